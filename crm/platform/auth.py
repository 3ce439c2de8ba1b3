"""Bearer tokens bound to one tenant, and the principal a request acts as.

A token reads ``crm_<tenant id>_<secret>``: the edge learns the tenant from the token
itself, then looks the secret's SHA-256 up inside that tenant's schema. Nothing the
client sends besides the token chooses the tenant. The user's ``is_active`` flag and the
token's revocation are checked on every request, so both take effect at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import asyncpg

from crm.platform.db import Database
from crm.platform.errors import Forbidden, TooManyRequests, TwoFactorRequired, Unauthorized
from crm.platform.lockout import account_key, clear_failures, record_failure, seconds_locked
from crm.platform.passwords import hash_password, needs_rehash, verify_password
from crm.platform.tables import Tenant
from crm.platform.tenancy import TenantRef, schema_for, scope_connection, tenant_scope
from crm.platform.totp import login_code_step, spend_step
from crm.tenants.audit.services import Actor, record_audit
from crm.tenants.users.tables import AccessToken, User

TOKEN = re.compile(r"^crm_([a-z0-9]{12})_([A-Za-z0-9_-]{40,64})$")


@dataclass(frozen=True)
class Origin:
    """Where a request comes from, for the audit log."""

    channel: str = "api"
    request_id: str | None = None
    client_address: str | None = None

    def user(self, principal: Principal) -> Actor:
        """The audit actor for ``principal`` acting through this origin."""
        return self.actor("user", principal.email, principal.user_id)

    def actor(self, kind: str, label: str, actor_id: int | None = None) -> Actor:
        return Actor(
            kind=kind,
            label=label,
            channel=self.channel,
            id=actor_id,
            request_id=self.request_id,
            client_address=self.client_address,
        )


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
    department_id: int | None = None
    # {entity: {action: scope}} of the user's role; anything absent is denied.
    rights: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)

    def scope(self, entity: str, action: str) -> str:
        """``none``, ``own``, ``department`` or ``all``: how far the role lets the user act."""
        return self.rights.get(entity, {}).get(action, "none")


SCOPE_ORDER = ("none", "own", "department", "all")
# The rights of each of the user's roles (the main one and the extra ones), as a JSON list.
ROLE_RIGHTS = (
    "(SELECT coalesce(jsonb_agg(r.rights), '[]'::jsonb) FROM roles r"
    " WHERE r.key = u.role OR r.key = ANY(u.extra_roles))::text"
)


def merge_rights(grants: list[dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """The rights of several roles together: for each entity and action, the widest scope."""
    merged: dict[str, dict[str, str]] = {}
    for rights in grants:
        for entity, actions in rights.items():
            for action, scope in actions.items():
                current = merged.setdefault(entity, {}).get(action, "none")
                if SCOPE_ORDER.index(scope) > SCOPE_ORDER.index(current):
                    merged[entity][action] = scope
    return merged


@functools.lru_cache(maxsize=1024)
def rights_of_roles(grants_json: str) -> Mapping[str, Mapping[str, str]]:
    """The merged rights of a user's roles, from the JSON list the principal queries return.
    Few distinct role sets exist, so the merge is cached by its text; the result is
    read-only because principals share it."""
    merged = merge_rights(json.loads(grants_json))
    return MappingProxyType({entity: MappingProxyType(actions) for entity, actions in merged.items()})


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def load_tenant(*, slug: str | None = None, tenant_id: str | None = None) -> TenantRef | None:
    """The tenant by slug or id, or None (deleted tenants count as absent)."""
    query = Tenant.select(Tenant.id, Tenant.slug, Tenant.schema_name, Tenant.edition, Tenant.status)
    query = query.where(Tenant.slug == slug) if slug is not None else query.where(Tenant.id == tenant_id)
    return _tenant_of(await query.first())


async def load_company(slug: str) -> tuple[TenantRef, str] | None:
    """The tenant by slug with the company's name, in one read (the console's every page)."""
    row = await (
        Tenant.select(Tenant.id, Tenant.slug, Tenant.schema_name, Tenant.edition, Tenant.status, Tenant.name)
        .where(Tenant.slug == slug)
        .first()
    )
    tenant = _tenant_of(row)
    return (tenant, row["name"] or tenant.slug) if tenant is not None and row is not None else None


def _tenant_of(row: dict[str, Any] | None) -> TenantRef | None:
    if row is None or row["status"] == "deleted":
        return None
    return TenantRef(
        id=row["id"],
        slug=row["slug"],
        schema=row["schema_name"],
        edition=row["edition"],
        status=row["status"],
    )


async def issue_token(
    db: Database,
    *,
    tenant_slug: str,
    email: str,
    password: str,
    secret_key: str,
    totp_code: str | None = None,
    name: str = "api",
    origin: Origin | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """Check the password and return a new bearer token. Unknown tenant, unknown e-mail and
    wrong password all end in the same 401 after the same amount of hashing work. Every
    attempt on an existing company is written to its audit log, failures included; after
    repeated failures the company + e-mail pair is locked out with back-off (429).

    With two-factor login on, a right password without ``totp_code`` answers 401
    ``two-factor-required``; a wrong or reused code counts as a failed login."""
    origin = origin or Origin()
    email = email.strip().lower()
    tenant = await load_tenant(slug=tenant_slug)
    account = account_key(tenant_slug, email)
    locked = await seconds_locked(db.pool, account)
    if locked:
        if tenant is not None:
            async with tenant_scope(tenant):
                await record_audit(
                    origin.actor("anonymous", email),
                    "auth.login_locked",
                    entity="user",
                    changes={"retry_after_seconds": (None, locked)},
                )
        raise TooManyRequests(f"Too many failed logins; try again in {locked} seconds.", retry_after=locked)
    user = None
    if tenant is not None:
        async with tenant_scope(tenant):
            user = (
                await User.select(
                    User.id,
                    User.password_hash,
                    User.is_active,
                    User.totp_secret,
                    User.totp_enabled_at,
                    User.totp_last_step,
                )
                .where(User.email == email)
                .first()
            )
    matched = await verify_password(user["password_hash"] if user else None, password)
    if tenant is None:
        await record_failure(db.pool, account)
        raise Unauthorized("Wrong company, e-mail or password.")
    failure = None
    code_step: int | None = None
    if not matched or user is None:
        failure = "wrong e-mail or password"
    elif not user["is_active"]:
        failure = "user deactivated"
    elif not tenant.is_active:
        failure = f"company {tenant.status}"
    elif user["totp_enabled_at"] is not None:
        if not totp_code:
            raise TwoFactorRequired("Enter the code from your authenticator app.", problem="is required")
        code_step = login_code_step(user, totp_code, secret_key=secret_key)
        if code_step is None:
            failure = "wrong two-factor code"
    if failure is not None:
        lock_seconds = await record_failure(db.pool, account)
        changes: dict[str, tuple[object, object]] = {"reason": (None, failure)}
        if lock_seconds:
            changes["locked_for_seconds"] = (None, lock_seconds)
        async with tenant_scope(tenant):
            await record_audit(
                origin.actor("anonymous", email),
                "auth.login_failed",
                entity="user",
                entity_id=user["id"] if user else None,
                changes=changes,
            )
        if failure == "wrong two-factor code":
            raise TwoFactorRequired("The two-factor code is wrong or already used.", problem="is wrong or used")
        if tenant.is_active or not matched:
            raise Unauthorized("Wrong company, e-mail or password.")
        raise Forbidden(f"The company account is {tenant.status}.", tenant_status=tenant.status)
    assert user is not None
    await clear_failures(db.pool, account)
    # Hashes made with older cost parameters are upgraded while the password is at hand.
    upgraded = await hash_password(password) if needs_rehash(user["password_hash"]) else None
    secret = secrets.token_urlsafe(32)
    async with tenant_scope(tenant):
        if code_step is not None and not await spend_step(user["id"], code_step):
            # The same code won a concurrent login a moment ago.
            raise TwoFactorRequired("The two-factor code is wrong or already used.", problem="is wrong or used")
        expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
        rows = await AccessToken.insert(
            AccessToken(user_id=user["id"], name=name, token_hash=token_hash(secret), expires_at=expires_at)
        ).returning(AccessToken.id)
        if upgraded:
            await User.update({User.password_hash: upgraded}).where(User.id == user["id"])
        await record_audit(
            origin.actor("user", email, user["id"]),
            "auth.login",
            entity="access_token",
            entity_id=rows[0]["id"],
            changes={"name": (None, name)},
        )
    return f"crm_{tenant.id}_{secret}"


# The whole of authentication in one statement and one round trip, outside any
# transaction: the tenant row, the token and its user with the rights of their roles,
# the token's "last used" stamp (written at most once a minute: a write per request would
# serialise on the row) and one hit on the token's rate-limit window (an UNLOGGED table, so
# counting does not wait for a WAL flush). Tenant tables are named with the schema the
# token's tenant id implies (schema_for); the tenant row must agree, or nothing matches.
_AUTHENTICATE = """
WITH tenant AS (
    SELECT id, slug, schema_name, edition, status FROM platform.tenants
    WHERE id = $1 AND schema_name = $2 AND status <> 'deleted'
), hit AS (
    SELECT t.id AS token_id, t.last_used_at, u.id AS user_id, u.email, u.name, u.locale, u.timezone, u.role,
           u.department_id,
           (SELECT coalesce(jsonb_agg(r.rights), '[]'::jsonb) FROM {schema}.roles r
            WHERE r.key = u.role OR r.key = ANY(u.extra_roles))::text AS rights
    FROM {schema}.access_tokens t JOIN {schema}.users u ON u.id = t.user_id
    WHERE t.token_hash = $3 AND t.revoked_at IS NULL AND u.is_active
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND EXISTS (SELECT FROM tenant)
), touched AS (
    UPDATE {schema}.access_tokens SET last_used_at = now()
    WHERE id = (SELECT token_id FROM hit)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
), counted AS (
    INSERT INTO platform.rate_limits AS r (key, window_start, hits)
    SELECT 'token:' || $1 || ':' || hit.token_id, now(), 1 FROM hit
    ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN r.window_start <= now() - interval '1 minute' THEN 1 ELSE r.hits + 1 END,
        window_start = CASE WHEN r.window_start <= now() - interval '1 minute' THEN now() ELSE r.window_start END
    RETURNING hits, extract(epoch FROM r.window_start + interval '1 minute' - now()) AS window_left
)
SELECT tenant.slug, tenant.edition, tenant.status, hit.token_id, hit.user_id, hit.email, hit.name, hit.locale,
       hit.timezone, hit.role, hit.department_id, hit.rights, counted.hits, counted.window_left
FROM tenant LEFT JOIN hit ON TRUE LEFT JOIN counted ON TRUE
"""
PRINCIPAL_COLUMNS = ("token_id", "user_id", "email", "name", "locale", "timezone", "role", "department_id")


@dataclass(frozen=True)
class Authenticated:
    """A principal, and the hits its token has made in the current one-minute window."""

    principal: Principal
    hits_this_minute: int
    seconds_left_in_minute: float


async def authenticate(db: Database, token: str) -> Authenticated:
    """Resolve a bearer token to its principal, or raise 401/403. Counts one request
    against the token's per-minute budget (the caller decides whether it is exceeded)."""
    match = TOKEN.fullmatch(token)
    if match is None:
        raise Unauthorized()
    tenant_id = match.group(1)
    schema = schema_for(tenant_id)
    try:
        row = await db.pool.fetchrow(
            _AUTHENTICATE.format(schema=f'"{schema}"'), tenant_id, schema, token_hash(match.group(2))
        )
    except asyncpg.UndefinedTableError:
        # No such schema: a made-up tenant id, or a company whose schema is gone.
        raise Unauthorized() from None
    if row is None or row["user_id"] is None:
        raise Unauthorized()
    tenant = TenantRef(id=tenant_id, slug=row["slug"], schema=schema, edition=row["edition"], status=row["status"])
    if not tenant.is_active:
        raise Forbidden(f"The company account is {tenant.status}.", tenant_status=tenant.status)
    fields = {column: row[column] for column in PRINCIPAL_COLUMNS}
    principal = Principal(tenant=tenant, rights=rights_of_roles(row["rights"]), **fields)
    return Authenticated(principal, row["hits"], float(row["window_left"]))


async def principal_of_user(tenant: TenantRef, user_id: int) -> Principal | None:
    """The principal of an active user, for work done on their behalf without a token
    (an import job, a bot update, a process step). Call inside the tenant's scope."""
    row = await scope_connection().fetchrow(
        f"""
        SELECT u.id AS user_id, u.email, u.name, u.locale, u.timezone, u.role, u.department_id,
               {ROLE_RIGHTS} AS rights
        FROM users u
        WHERE u.id = $1 AND u.is_active
        """,
        user_id,
    )
    if row is None:
        return None
    fields = dict(row)
    fields["rights"] = rights_of_roles(fields["rights"])
    return Principal(tenant=tenant, token_id=0, **fields)


async def revoke_token(db: Database, principal: Principal, *, origin: Origin | None = None) -> None:
    origin = origin or Origin()
    async with tenant_scope(principal.tenant):
        await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)}).where(
            AccessToken.id == principal.token_id
        )
        await record_audit(
            origin.actor("user", principal.email, principal.user_id),
            "auth.token_revoked",
            entity="access_token",
            entity_id=principal.token_id,
        )
