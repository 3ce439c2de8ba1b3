"""Using a signed one-time link (invitation, password reset) from the link to the user.

Both kinds of link end the same way: find the company from the signed token, find the row
behind it in that company's schema, check it is unused and unexpired, check the new
password, then spend the row — with a conditional update, so of two concurrent uses only
one succeeds. What happens to the user afterwards is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from crm.platform.auth import load_tenant
from crm.platform.errors import CrmError, FieldError, InvalidInput
from crm.platform.passwords import password_problem
from crm.platform.signing import LinkParts, nonce_hash, read_link_token
from crm.platform.tenancy import TenantRef
from crm.tenants.users.tables import Invitation, PasswordReset

LinkTable = type[Invitation] | type[PasswordReset]


class InvalidLink(CrmError):
    """The link is forged, altered, used or expired: it will never work again (410)."""

    code = "invalid-link"
    status = 410
    title = "Link not valid"


async def open_link(secret_key: str, purpose: str, token: str, *, noun: str) -> tuple[TenantRef, LinkParts]:
    """The company and parts of a genuine link; 410 otherwise."""
    parts = read_link_token(secret_key, purpose, token)
    tenant = await load_tenant(tenant_id=parts.tenant_id) if parts else None
    if parts is None or tenant is None or not tenant.is_active:
        raise InvalidLink(f"This {noun} link is not valid.")
    return tenant, parts


@dataclass(frozen=True)
class LinkHolder:
    user_id: int
    email: str
    name: str = ""
    locale: str = "en"


async def check_link(table: LinkTable, parts: LinkParts, *, noun: str) -> tuple[int, LinkHolder]:
    """Inside the company's scope: the row id and holder of a link that is unused and
    unexpired (410 otherwise), without spending it — for the page that shows the form."""
    row = await (
        table.select(
            table.id,
            table.user_id,
            table.token_hash,
            table.expires_at,
            table.used_at,
            table.user_id.email,
            table.user_id.name,
            table.user_id.locale,
        )
        .where(table.id == parts.row_id)
        .first()
    )
    if row is None or row["token_hash"] != nonce_hash(parts.nonce):
        raise InvalidLink(f"This {noun} link is not valid.")
    if row["used_at"] is not None:
        raise InvalidLink(f"This {noun} has already been used.")
    if row["expires_at"] <= datetime.now(UTC):
        raise InvalidLink(f"This {noun} has expired; ask for a new one.")
    holder = LinkHolder(
        user_id=row["user_id"], email=row["user_id.email"], name=row["user_id.name"], locale=row["user_id.locale"]
    )
    return row["id"], holder


async def spend_link(table: LinkTable, parts: LinkParts, new_password: str, *, noun: str) -> LinkHolder:
    """Inside the company's scope: check the row and the new password, then spend the row."""
    row_id, holder = await check_link(table, parts, noun=noun)
    weakness = password_problem(new_password, email=holder.email, name=holder.name)
    if weakness:
        raise InvalidInput("The password is too weak.", errors=[FieldError("password", weakness)])
    spent = await (
        table.update({table.used_at: datetime.now(UTC)})
        .where(table.id == row_id, table.used_at.is_null())
        .returning(table.id)
    )
    if not spent:
        raise InvalidLink(f"This {noun} has already been used.")
    return holder
