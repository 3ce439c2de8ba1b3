"""Links between Telegram accounts and staff users (platform tables, DESIGN.md §2).

- A one-time code (``POST /api/v1/me/telegram-link``) is valid 15 minutes and used once;
  only its SHA-256 is stored. ``/start <code>`` spends it with one conditional UPDATE, so two
  concurrent uses cannot both succeed.
- One Telegram account may be linked to users of several companies, one user per company,
  and one CRM user to one Telegram account (linking another account replaces the first).
  The link selected most recently is the company the bot works in.
- Deactivating a user removes their link in the same transaction (:func:`unlink_user`).

Plain SQL: platform rows, and the active link is read on every update.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import asyncpg

from crm.platform.auth import Origin
from crm.platform.tenancy import TenantRef, checked_schema_name, scope_connection, tenant_scope
from crm.tenants.audit.services import record_audit

CODE_LIFETIME = timedelta(minutes=15)
# Telegram's deep-link parameter allows 64 characters of A-Z, a-z, 0-9, _ and -.
CODE_BYTES = 24
CODE_FORMAT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Changes made from Telegram are audited with the channel ``bot``.
BOT = Origin(channel="bot")


@dataclass(frozen=True)
class LinkCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class ActiveLink:
    """The company a Telegram account works in now, and its user there."""

    tenant: TenantRef
    user_id: int
    company: str  # the company's name
    blocked: bool = False  # the sender's chat was marked as having blocked the bot


@dataclass(frozen=True)
class LinkedCompany:
    tenant_id: str
    name: str


class Redeemed(Enum):
    LINKED = "linked"
    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class Redemption:
    outcome: Redeemed
    tenant: TenantRef | None = None
    user_id: int | None = None
    user_name: str = ""
    locale: str = "en"
    company: str = ""


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def issue_link_code(tenant_id: str, user_id: int) -> LinkCode:
    """A new code for the user, in the open tenant scope's transaction (the caller audits
    it there); the user's earlier unused codes stop working."""
    code = secrets.token_urlsafe(CODE_BYTES)
    connection = scope_connection()
    await connection.execute(
        "DELETE FROM platform.telegram_link_codes"
        " WHERE (tenant_id = $1 AND user_id = $2 AND used_at IS NULL) OR expires_at < now() - interval '1 day'",
        tenant_id,
        user_id,
    )
    expires_at: datetime = await connection.fetchval(
        "INSERT INTO platform.telegram_link_codes (code_hash, tenant_id, user_id, expires_at)"
        " VALUES ($1, $2, $3, now() + $4::interval) RETURNING expires_at",
        code_hash(code),
        tenant_id,
        user_id,
        CODE_LIFETIME,
    )
    return LinkCode(code=code, expires_at=expires_at)


_FIND_CODE = """
SELECT c.tenant_id, c.used_at IS NOT NULL AS used, c.expires_at <= now() AS expired,
       t.slug, t.schema_name, t.edition, t.status, t.name
FROM platform.telegram_link_codes c JOIN platform.tenants t ON t.id = c.tenant_id
WHERE c.code_hash = $1
"""
_SPEND = """
UPDATE platform.telegram_link_codes SET used_at = now()
WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING user_id
"""


async def redeem_link_code(pool: asyncpg.Pool, code: str, *, telegram_user_id: int, chat_id: int) -> Redemption:
    """Spend ``code`` and link the Telegram account to its user, who must still be active.

    The code names its company; in that company's scope one transaction spends the code
    (a conditional UPDATE: of two concurrent uses one wins), checks the user, writes the
    link and its audit row. A code whose user was deactivated is refused and stays spent.
    Must run outside any tenant scope."""
    if not CODE_FORMAT.fullmatch(code):
        return Redemption(Redeemed.INVALID)
    hashed = code_hash(code)
    found = await pool.fetchrow(_FIND_CODE, hashed)
    if found is None:
        return Redemption(Redeemed.INVALID)
    if found["used"]:
        return Redemption(Redeemed.USED)
    if found["expired"]:
        return Redemption(Redeemed.EXPIRED)
    tenant = TenantRef(
        id=found["tenant_id"],
        slug=found["slug"],
        schema=checked_schema_name(found["schema_name"]),
        edition=found["edition"],
        status=found["status"],
    )
    if not tenant.is_active:
        return Redemption(Redeemed.INVALID)
    async with tenant_scope(tenant):
        connection = scope_connection()
        user_id = await connection.fetchval(_SPEND, hashed)
        if user_id is None:  # spent by a concurrent use, or expired this very moment
            return Redemption(Redeemed.USED)
        user = await connection.fetchrow("SELECT email, name, locale FROM users WHERE id = $1 AND is_active", user_id)
        if user is None:
            return Redemption(Redeemed.INVALID)
        # Another Telegram account of this user, or this account's earlier user in the
        # same company, gives way to the new link.
        await connection.execute(
            "DELETE FROM platform.telegram_links WHERE tenant_id = $1 AND (user_id = $2 OR telegram_user_id = $3)",
            tenant.id,
            user_id,
            telegram_user_id,
        )
        await connection.execute(
            "INSERT INTO platform.telegram_links (telegram_user_id, chat_id, tenant_id, user_id)"
            " VALUES ($1, $2, $3, $4)",
            telegram_user_id,
            chat_id,
            tenant.id,
            user_id,
        )
        await record_audit(
            BOT.actor("user", user["email"], user_id), "telegram.linked", entity="user", entity_id=user_id
        )
    return Redemption(
        Redeemed.LINKED,
        tenant=tenant,
        user_id=user_id,
        user_name=user["name"],
        locale=user["locale"],
        company=found["name"],
    )


_ACTIVE = """
SELECT l.tenant_id, l.user_id, t.slug, t.schema_name, t.edition, t.status, t.name,
       EXISTS (SELECT 1 FROM platform.telegram_links b
               WHERE b.telegram_user_id = $1 AND b.blocked_at IS NOT NULL) AS blocked
FROM platform.telegram_links l JOIN platform.tenants t ON t.id = l.tenant_id
WHERE l.telegram_user_id = $1 AND t.status <> 'deleted'
ORDER BY l.selected_at DESC, l.id DESC
LIMIT 1
"""


async def active_link(db: asyncpg.Pool | asyncpg.Connection, telegram_user_id: int) -> ActiveLink | None:
    """The company the account works in now (the link selected last), or None."""
    row = await db.fetchrow(_ACTIVE, telegram_user_id)
    if row is None:
        return None
    tenant = TenantRef(
        id=row["tenant_id"],
        slug=row["slug"],
        schema=checked_schema_name(row["schema_name"]),
        edition=row["edition"],
        status=row["status"],
    )
    return ActiveLink(tenant=tenant, user_id=row["user_id"], company=row["name"], blocked=row["blocked"])


async def mark_blocked(pool: asyncpg.Pool, telegram_user_id: int, blocked: bool) -> None:
    """The account blocked the bot (reminders go by e-mail), or talks to it again."""
    await pool.execute(
        "UPDATE platform.telegram_links SET blocked_at = CASE WHEN $2 THEN now() END"
        " WHERE telegram_user_id = $1 AND (blocked_at IS NULL) = $2",
        telegram_user_id,
        blocked,
    )


async def linked_companies(pool: asyncpg.Pool, telegram_user_id: int) -> list[LinkedCompany]:
    """Every company the account is linked to, by name."""
    rows = await pool.fetch(
        "SELECT l.tenant_id, t.name FROM platform.telegram_links l JOIN platform.tenants t ON t.id = l.tenant_id"
        " WHERE l.telegram_user_id = $1 AND t.status <> 'deleted' ORDER BY t.name, t.id",
        telegram_user_id,
    )
    return [LinkedCompany(tenant_id=row["tenant_id"], name=row["name"]) for row in rows]


async def company_name(pool: asyncpg.Pool, tenant_id: str) -> str:
    name: str | None = await pool.fetchval("SELECT name FROM platform.tenants WHERE id = $1", tenant_id)
    return name or ""


async def select_company(pool: asyncpg.Pool, telegram_user_id: int, tenant_id: str) -> bool:
    """Make ``tenant_id`` the company the account works in; False if it is not linked there.
    Only the sender's own links are touched, so a forged button reaches nothing."""
    status: str = await pool.execute(
        "UPDATE platform.telegram_links SET selected_at = clock_timestamp()"
        " WHERE telegram_user_id = $1 AND tenant_id = $2",
        telegram_user_id,
        tenant_id,
    )
    return status != "UPDATE 0"


async def unlink_account(telegram_user_id: int, tenant: TenantRef, *, email: str, user_id: int) -> None:
    """``/logout``: the account leaves the company whose scope is open (audited there); the
    link selected before it becomes the active one."""
    await scope_connection().execute(
        "DELETE FROM platform.telegram_links WHERE telegram_user_id = $1 AND tenant_id = $2",
        telegram_user_id,
        tenant.id,
    )
    await record_audit(BOT.actor("user", email, user_id), "telegram.unlinked", entity="user", entity_id=user_id)


async def unlink_user(tenant_id: str, user_id: int) -> None:
    """Remove the user's Telegram link and unused codes, in the open tenant scope's
    transaction (deactivation): a rolled-back deactivation keeps the link."""
    connection = scope_connection()
    await connection.execute(
        "DELETE FROM platform.telegram_links WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id
    )
    await connection.execute(
        "DELETE FROM platform.telegram_link_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL",
        tenant_id,
        user_id,
    )
