"""The unsubscribe link: signed, works without login, and leaves the address out of every
later mailing of the company.

``/unsubscribe/<tenant id>.<delivery id>.<nonce>.<signature>`` (crm.platform.signing): the
signature covers the company and the delivery, so a link cannot be altered to unsubscribe
someone else. GET shows a page with a button (mail scanners fetch links; they must not
unsubscribe anybody); POST — the button, or a mail client's one-click unsubscribe
(RFC 8058, ``List-Unsubscribe-Post``) — does it. The pages speak Russian or English
(unsubscribe_page.py says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import PathParameter

from crm.platform.auth import load_tenant
from crm.platform.mail import current_mail
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address
from crm.platform.services import services_of
from crm.platform.signing import link_token, read_link_token, sign
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.tenants.audit.services import Actor, record_audit
from crm.tenants.mailings.unsubscribe_page import page_language, unsubscribe_page

PURPOSE = "unsubscribe"
Token = Annotated[str, PathParameter(max_length=200)]


def _nonce(secret_key: str, tenant_id: str, delivery_id: int) -> str:
    # Derived, not stored: the link of a delivery is the same on every retry of its letter.
    return sign(secret_key, "unsubscribe-nonce", tenant_id, str(delivery_id))[:24]


def unsubscribe_token(secret_key: str, tenant_id: str, delivery_id: int) -> str:
    return link_token(secret_key, PURPOSE, tenant_id, delivery_id, _nonce(secret_key, tenant_id, delivery_id))


def unsubscribe_url(tenant_id: str, delivery_id: int) -> str:
    settings = current_mail().settings
    token = unsubscribe_token(settings.secret_key.reveal(), tenant_id, delivery_id)
    return f"{settings.web.public_url.rstrip('/')}/unsubscribe/{token}"


@dataclass(frozen=True)
class Recipient:
    """Whom a genuine link belongs to."""

    tenant: Any
    delivery_id: int
    email: str
    company: str
    locale: str | None  # the company's language


async def _recipient(secret_key: str, token: str) -> Recipient | None:
    """The recipient of a genuine link, else None."""
    parts = read_link_token(secret_key, PURPOSE, token)
    if parts is None or parts.nonce != _nonce(secret_key, parts.tenant_id, parts.row_id):
        return None
    tenant = await load_tenant(tenant_id=parts.tenant_id)
    if tenant is None:
        return None
    async with tenant_scope(tenant):
        row = await scope_connection().fetchrow(
            "SELECT d.email, c.value->>'name' AS company, c.value->>'locale' AS locale"
            " FROM mailing_deliveries d LEFT JOIN tenant_settings c ON c.key = 'company' WHERE d.id = $1",
            parts.row_id,
        )
    if row is None:
        return None
    return Recipient(tenant, parts.row_id, row["email"], row["company"] or tenant.slug, row["locale"])


async def unsubscribe(secret_key: str, token: str) -> Recipient | None:
    """Record the unsubscription of a genuine link (idempotent); its recipient, or None."""
    found = await _recipient(secret_key, token)
    if found is None:
        return None
    async with tenant_scope(found.tenant):
        connection = scope_connection()
        added = await connection.fetchval(
            "INSERT INTO mailing_unsubscribes (email, reason, mailing_id)"
            " SELECT $1, 'unsubscribed', mailing_id FROM mailing_deliveries WHERE id = $2"
            " ON CONFLICT (email) DO NOTHING RETURNING id",
            found.email,
            found.delivery_id,
        )
        if added is not None:
            # Letters of mailings under way that have not gone yet are not sent either.
            await connection.execute(
                "UPDATE mailing_deliveries SET state = 'cancelled' WHERE email = $1 AND state = 'pending'", found.email
            )
            await record_audit(
                Actor(kind="anonymous", label="unsubscribe link", channel="api"),
                "mailing.unsubscribed",
                entity="mailing_delivery",
                entity_id=found.delivery_id,
                changes={"unsubscribed": (False, True)},
            )
    return found


def _answer(request: Request[Any, Any, Any], kind: str, found: Recipient | None) -> Response[str]:
    language = page_language(request.headers.get("accept-language"), found.locale if found else None)
    if found is None:
        return unsubscribe_page("invalid", language, status=410)
    return unsubscribe_page(kind, language, email=found.email, company=found.company)


class UnsubscribeController(Controller):
    path = "/unsubscribe"
    tags = ["mailings"]
    include_in_schema = False

    @get("/{token:str}", opt=PUBLIC, operation_id="unsubscribePage")
    async def confirm(self, request: Request[Any, Any, Any], state: State, token: Token) -> Response[str]:
        services = services_of(state)
        await check_rate_limit(services.db.pool, f"unsub:{client_address(request)}", limit=60, window_seconds=60)
        return _answer(request, "confirm", await _recipient(services.settings.secret_key.reveal(), token))

    @post("/{token:str}", opt=PUBLIC, operation_id="unsubscribe", status_code=200)
    async def unsubscribe(self, request: Request[Any, Any, Any], state: State, token: Token) -> Response[str]:
        services = services_of(state)
        await check_rate_limit(services.db.pool, f"unsub:{client_address(request)}", limit=60, window_seconds=60)
        return _answer(request, "done", await unsubscribe(services.settings.secret_key.reveal(), token))
