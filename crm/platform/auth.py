"""Bearer tokens bound to one tenant, and the principal a request acts as.

A token reads ``crm_<tenant id>_<secret>``: the edge learns the tenant from the token
itself, then looks the secret's SHA-256 up inside that tenant's schema. Nothing the
client sends besides the token chooses the tenant. The user's ``is_active`` flag and the
token's revocation are checked on every request, so both take effect at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from crm.platform.db import Database
from crm.platform.errors import Forbidden, Unauthorized
from crm.platform.passwords import hash_password, needs_rehash, verify_password
from crm.platform.tables import Tenant
from crm.platform.tenancy import TenantRef, read_in_tenant, scope_connection, tenant_scope
from crm.tenants.users.tables import AccessToken, User

TOKEN = re.compile(r"^crm_([a-z0-9]{12})_([A-Za-z0-9_-]{40,64})$")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: one user of one tenant."""

    tenant: TenantRef
    user_id: int
    email: str
    name: str
    locale: str
    timezone: str
    role: str
    token_id: int


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def load_tenant(*, slug: str | None = None, tenant_id: str | None = None) -> TenantRef | None:
    """The tenant by slug or id, or None (deleted tenants count as absent)."""
    query = Tenant.select(Tenant.id, Tenant.slug, Tenant.schema_name, Tenant.edition, Tenant.status)
    query = query.where(Tenant.slug == slug) if slug is not None else query.where(Tenant.id == tenant_id)
    row = await query.first()
    if row is None or row["status"] == "deleted":
        return None
    return TenantRef(
        id=row["id"],
        slug=row["slug"],
        schema=row["schema_name"],
        edition=row["edition"],
        status=row["status"],
    )


async def issue_token(db: Database, *, tenant_slug: str, email: str, password: str, name: str = "api") -> str:
    """Check the password and return a new bearer token. Unknown tenant, unknown e-mail and
    wrong password all end in the same 401 after the same amount of hashing work."""
    tenant = await load_tenant(slug=tenant_slug)
    user = None
    if tenant is not None:
        async with tenant_scope(tenant):
            user = (
                await User.select(User.id, User.password_hash, User.is_active)
                .where(User.email == email.strip().lower())
                .first()
            )
    if not await verify_password(user["password_hash"] if user else None, password):
        raise Unauthorized("Wrong company, e-mail or password.")
    assert tenant is not None and user is not None
    if not user["is_active"]:
        raise Unauthorized("Wrong company, e-mail or password.")
    if not tenant.is_active:
        raise Forbidden(f"The company account is {tenant.status}.", tenant_status=tenant.status)
    # Hashes made with older cost parameters are upgraded while the password is at hand.
    upgraded = await hash_password(password) if needs_rehash(user["password_hash"]) else None
    secret = secrets.token_urlsafe(32)
    async with tenant_scope(tenant):
        await AccessToken.insert(AccessToken(user_id=user["id"], name=name, token_hash=token_hash(secret)))
        if upgraded:
            await User.update({User.password_hash: upgraded}).where(User.id == user["id"])
    return f"crm_{tenant.id}_{secret}"


async def authenticate(db: Database, token: str) -> Principal:
    """Resolve a bearer token to its principal, or raise 401/403."""
    match = TOKEN.fullmatch(token)
    if match is None:
        raise Unauthorized()
    tenant = await load_tenant(tenant_id=match.group(1))
    if tenant is None:
        raise Unauthorized()
    secret_hash = token_hash(match.group(2))

    async def look_up() -> asyncpg.Record | None:
        connection = scope_connection()
        row: asyncpg.Record | None = await connection.fetchrow(
            """
            SELECT t.id AS token_id, u.id AS user_id, u.email, u.name, u.locale, u.timezone, u.role
            FROM access_tokens t JOIN users u ON u.id = t.user_id
            WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.is_active
              AND (t.expires_at IS NULL OR t.expires_at > now())
            """,
            secret_hash,
        )
        if row is not None:
            # Record use at most once a minute: a write per request would serialise on the
            # row. The write is idempotent, so the lookup stays safe to retry.
            await connection.execute(
                """
                UPDATE access_tokens SET last_used_at = now()
                WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                """,
                row["token_id"],
            )
        return row

    row = await read_in_tenant(tenant, look_up)
    if row is None:
        raise Unauthorized()
    if not tenant.is_active:
        raise Forbidden(f"The company account is {tenant.status}.", tenant_status=tenant.status)
    return Principal(tenant=tenant, **dict(row))


async def revoke_token(db: Database, principal: Principal) -> None:
    async with tenant_scope(principal.tenant):
        await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)}).where(
            AccessToken.id == principal.token_id
        )
