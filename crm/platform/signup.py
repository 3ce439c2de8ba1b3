"""Signup: a company becomes a tenant with its own schema, in one transaction.

Provisioning creates the schema at the current version in one step (the DDL of the
table classes, sent in one round trip) instead of replaying every migration. It is
atomic: the tenant row, the schema, the seeded configuration and the admin user commit
together or not at all, so a crash leaves no half tenant, and the unique slug makes a
retried request either succeed once or answer 409.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import asyncpg
import msgspec

from crm.platform.auth import Origin
from crm.platform.db import Database
from crm.platform.editions import Editions
from crm.platform.errors import Conflict, FieldError, InvalidInput
from crm.platform.migrate import latest_version, tenant_migrations
from crm.platform.passwords import hash_password, password_problem
from crm.platform.tables import Identity, Tenant
from crm.platform.tenancy import TenantRef, schema_for, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.phones import region_for
from crm.tenants.configuration.services import seed_edition_defaults
from crm.tenants.schema import current_schema_ddl
from crm.tenants.users.tables import User

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
# Slugs appear in URLs and sub-domains next to our own paths.
RESERVED_SLUGS = frozenset(
    {
        "api",
        "admin",
        "app",
        "www",
        "static",
        "health",
        "ready",
        "schema",
        "signup",
        "login",
        "platform",
        "public",
        "mail",
        "help",
        "support",
        "billing",
        "webhooks",
        "docs",
        # Paths of the console's links (password reset, invitations, unsubscribe).
        "reset",
        "invite",
        "unsubscribe",
    }
)
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
LOCALES = ("ru", "en")


class SignupRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    company: str
    slug: str
    edition: str
    admin_email: str
    admin_password: str
    admin_name: str
    locale: str = "en"
    timezone: str = "UTC"


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: TenantRef
    admin_user_id: int


def new_tenant_id() -> str:
    """12 characters of [a-z2-7]: short, immutable, unrelated to the slug."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()[:12]


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_signup(request: SignupRequest, editions: Editions) -> list[FieldError]:
    errors: list[FieldError] = []
    if not request.company.strip() or len(request.company) > 200:
        errors.append(FieldError("company", "must be 1 to 200 characters"))
    if not SLUG.fullmatch(request.slug):
        errors.append(
            FieldError(
                "slug",
                "must be 3 to 40 characters: lowercase letters, digits and hyphens, starting with a letter",
            )
        )
    elif request.slug in RESERVED_SLUGS:
        errors.append(FieldError("slug", "is reserved"))
    if editions.get(request.edition) is None:
        errors.append(FieldError("edition", f"unknown edition; choose one of: {', '.join(editions.keys())}"))
    if len(request.admin_email) > 320 or not EMAIL.fullmatch(request.admin_email):
        errors.append(FieldError("admin_email", "is not a valid e-mail address"))
    if not request.admin_name.strip() or len(request.admin_name) > 200:
        errors.append(FieldError("admin_name", "must be 1 to 200 characters"))
    weakness = password_problem(request.admin_password, email=request.admin_email, name=request.admin_name)
    if weakness:
        errors.append(FieldError("admin_password", weakness))
    if request.locale not in LOCALES:
        errors.append(FieldError("locale", f"must be one of: {', '.join(LOCALES)}"))
    if request.timezone not in _timezones():
        errors.append(FieldError("timezone", "is not a known IANA time zone, e.g. Europe/Moscow"))
    return errors


@lru_cache(maxsize=1)
def _schema_sql() -> str:
    return ";\n".join(current_schema_ddl())


async def provision_tenant(
    db: Database,
    editions: Editions,
    request: SignupRequest,
    *,
    origin: Origin | None = None,
    seed: Callable[[int], Awaitable[object]] | None = None,
) -> ProvisionedTenant:
    """Validate, then create tenant row, schema, defaults and admin user in one transaction.

    ``seed`` (given the admin's user id) adds data in the same transaction — the demo
    company's clients, for instance."""
    errors = validate_signup(request, editions)
    if errors:
        raise InvalidInput("The signup request has invalid fields.", errors=errors)
    if await Tenant.exists().where(Tenant.slug == request.slug):
        raise _slug_taken(request.slug)
    edition = editions[request.edition]
    email = request.admin_email.lower()
    # Hashing runs in a worker thread while the transaction builds the schema.
    password_hash = asyncio.ensure_future(hash_password(request.admin_password))
    tenant_id = new_tenant_id()
    tenant = TenantRef(id=tenant_id, slug=request.slug, schema=schema_for(tenant_id), edition=edition.key)
    try:
        async with tenant_scope(tenant) as transaction:
            connection: asyncpg.Connection = transaction.connection
            await connection.execute(
                """
                INSERT INTO platform.tenants (id, slug, name, schema_name, edition, status, schema_version,
                                              locale, timezone)
                VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8)
                """,
                tenant.id,
                tenant.slug,
                request.company.strip(),
                tenant.schema,
                tenant.edition,
                latest_version(tenant_migrations()),
                request.locale,
                request.timezone,
            )
            await connection.execute(f'CREATE SCHEMA "{tenant.schema}"')
            await connection.execute(_schema_sql())
            await seed_edition_defaults(edition.defaults, company=_company_profile(request))
            rows = await User.insert(
                User(
                    email=email,
                    name=request.admin_name.strip(),
                    password_hash=await password_hash,
                    locale=request.locale,
                    timezone=request.timezone,
                    role="admin",
                )
            ).returning(User.id)
            admin_id = int(rows[0]["id"])
            await Identity.insert(Identity(email=email, tenant_id=tenant.id, user_id=admin_id))
            actor = (origin or Origin(channel="cli")).actor("anonymous", email)
            await record_audit(
                actor,
                "tenant.created",
                entity="tenant",
                entity_id=tenant.id,
                changes={
                    "slug": (None, tenant.slug),
                    "edition": (None, tenant.edition),
                    "name": (None, request.company),
                },
            )
            await record_audit(
                actor,
                "user.created",
                entity="user",
                entity_id=admin_id,
                changes={"email": (None, email), "role": (None, "admin"), "password_hash": (None, "set")},
            )
            if seed is not None:
                await seed(admin_id)
    except asyncpg.UniqueViolationError as exc:
        # Two identical requests raced past the existence check: one committed.
        if exc.constraint_name == "tenants_slug_key":
            raise _slug_taken(request.slug) from exc
        raise
    finally:
        password_hash.cancel()  # no-op once awaited; otherwise nobody waits for it
    return ProvisionedTenant(tenant=tenant, admin_user_id=admin_id)


def _slug_taken(slug: str) -> Conflict:
    return Conflict(
        f"A company with the address {slug!r} already exists.",
        errors=[FieldError("slug", "is already taken")],
    )


def _company_profile(request: SignupRequest) -> dict[str, Any]:
    ZoneInfo(request.timezone)  # validated above; fails loudly if the tz database changed
    return {
        "name": request.company.strip(),
        "locale": request.locale,
        "timezone": request.timezone,
        # Local phone numbers ("8 912 …") are read in this region; the admin can change it.
        "phone_region": region_for(request.timezone, request.locale),
    }
