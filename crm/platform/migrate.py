"""Schema migrations: the platform schema, then every tenant schema (DESIGN.md §4).

Migrations are ordered modules ``mNNNN_<name>.py`` with ``VERSION``, ``NAME`` and
``async def upgrade(connection)``. The platform schema records applied versions in
``platform.schema_migrations``; each tenant's version is ``platform.tenants.schema_version``,
so "which tenants are behind" is one indexed query. Each tenant migrates in its own
transaction (DDL is transactional in PostgreSQL: a crash leaves the tenant at its old
version and the next run resumes), in parallel over a pool, with a lock timeout so one
busy tenant fails alone instead of stalling the run.

Piccolo's own migration manager is not used: it tracks applied migrations in a table it
finds without regard to schema, and it would replay history for every new tenant.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg

from crm.platform.tenancy import checked_schema_name, set_tenant_search_path

MODULE_NAME = re.compile(r"^m(\d{4})_[a-z0-9_]+$")
PLATFORM_MIGRATIONS = "crm.platform.migrations"
TENANT_MIGRATIONS = "crm.tenants.migrations"
# Any constant works; it only has to be the same for every process running migrations.
PLATFORM_MIGRATION_LOCK = 7_420_001
DEFAULT_LOCK_TIMEOUT = "5s"

Upgrade = Callable[[asyncpg.Connection], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Upgrade


class MigrationError(RuntimeError):
    pass


def discover_migrations(package: str) -> list[Migration]:
    """Load the migration modules of ``package`` ordered by version (1, 2, … without gaps)."""
    root = importlib.import_module(package)
    migrations: list[Migration] = []
    for info in pkgutil.iter_modules(root.__path__):
        if not MODULE_NAME.fullmatch(info.name):
            continue
        module: Any = importlib.import_module(f"{package}.{info.name}")
        migrations.append(Migration(version=module.VERSION, name=module.NAME, upgrade=module.upgrade))
    migrations.sort(key=lambda migration: migration.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"{package}: expected migration version {expected}, found {migration.version}")
    return migrations


# The migration modules ship with the code and do not change while a process runs.
@lru_cache(maxsize=1)
def platform_migrations() -> tuple[Migration, ...]:
    return tuple(discover_migrations(PLATFORM_MIGRATIONS))


@lru_cache(maxsize=1)
def tenant_migrations() -> tuple[Migration, ...]:
    return tuple(discover_migrations(TENANT_MIGRATIONS))


def latest_version(migrations: Sequence[Migration]) -> int:
    return migrations[-1].version if migrations else 0


# --- platform schema -------------------------------------------------------------------

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS platform;
CREATE TABLE IF NOT EXISTS platform.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


async def platform_schema_version(connection: asyncpg.Connection) -> int:
    """The platform schema's version, 0 when it has never been migrated."""
    exists = await connection.fetchval("SELECT to_regclass('platform.schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    version = await connection.fetchval("SELECT coalesce(max(version), 0) FROM platform.schema_migrations")
    return int(version)


async def migrate_platform(pool: asyncpg.Pool, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply pending platform migrations in one transaction; return the versions applied."""
    migrations = platform_migrations() if migrations is None else migrations
    async with pool.acquire() as connection, connection.transaction():
        # Several processes may start at once (web, worker, scheduler): one migrates,
        # the others wait here and then find nothing to do.
        await connection.execute("SELECT pg_advisory_xact_lock($1)", PLATFORM_MIGRATION_LOCK)
        await connection.execute(_BOOTSTRAP)
        current = await platform_schema_version(connection)
        applied: list[int] = []
        for migration in migrations:
            if migration.version <= current:
                continue
            await migration.upgrade(connection)
            await connection.execute(
                "INSERT INTO platform.schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
        return applied


# --- tenant schemas --------------------------------------------------------------------


@dataclass(frozen=True)
class TenantBehind:
    id: str
    slug: str
    schema_name: str
    schema_version: int


@dataclass(frozen=True)
class TenantMigrationResult:
    slug: str
    from_version: int
    to_version: int
    seconds: float
    error: str | None = None
    # Another runner held the tenant, or it was already at the target.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


async def tenants_behind(
    connection: asyncpg.Connection | asyncpg.Pool, target: int, *, slugs: Sequence[str] | None = None
) -> list[TenantBehind]:
    """Tenants (not deleted, optionally only ``slugs``) whose schema is older than ``target``."""
    rows = await connection.fetch(
        """
        SELECT id, slug, schema_name, schema_version FROM platform.tenants
        WHERE schema_version < $1 AND status <> 'deleted' AND ($2::text[] IS NULL OR slug = ANY($2::text[]))
        ORDER BY id
        """,
        target,
        list(slugs) if slugs is not None else None,
    )
    return [TenantBehind(**dict(row)) for row in rows]


async def migrate_tenant(
    pool: asyncpg.Pool,
    tenant: TenantBehind,
    migrations: Sequence[Migration],
    *,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
) -> TenantMigrationResult:
    """Bring one tenant to the latest version in one transaction; never raises."""
    started = time.perf_counter()
    target = latest_version(migrations)
    version = tenant.schema_version
    try:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT set_config('lock_timeout', $1, true)", lock_timeout)
            # The row lock keeps two runners off one tenant: the second skips it (the first
            # is migrating it) instead of waiting. The version is re-read under the lock.
            row = await connection.fetchrow(
                "SELECT schema_version FROM platform.tenants WHERE id = $1 FOR UPDATE SKIP LOCKED", tenant.id
            )
            if row is None:
                return TenantMigrationResult(tenant.slug, version, version, time.perf_counter() - started, skipped=True)
            version = row["schema_version"]
            if version >= target:  # done meanwhile, possibly by newer code: never step back
                return TenantMigrationResult(tenant.slug, version, version, time.perf_counter() - started, skipped=True)
            await set_tenant_search_path(connection, checked_schema_name(tenant.schema_name))
            for migration in migrations:
                if migration.version > version:
                    await migration.upgrade(connection)
            await connection.execute(
                "UPDATE platform.tenants SET schema_version = $2, updated_at = now() WHERE id = $1",
                tenant.id,
                target,
            )
    except Exception as exc:  # one failing tenant is reported and does not stop the others
        return TenantMigrationResult(
            tenant.slug, version, version, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
        )
    return TenantMigrationResult(tenant.slug, version, target, time.perf_counter() - started)


async def migrate_tenants(
    pool: asyncpg.Pool,
    migrations: Sequence[Migration] | None = None,
    *,
    jobs: int = 4,
    slugs: Sequence[str] | None = None,
    on_result: Callable[[TenantMigrationResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[TenantMigrationResult]:
    """Migrate every tenant that is behind (or only ``slugs``), ``jobs`` at a time."""
    migrations = tenant_migrations() if migrations is None else migrations
    behind = await tenants_behind(pool, latest_version(migrations), slugs=slugs)
    if on_start is not None:
        on_start(len(behind))
    queue: asyncio.Queue[TenantBehind] = asyncio.Queue()
    for tenant in behind:
        queue.put_nowait(tenant)
    results: list[TenantMigrationResult] = []

    async def work() -> None:
        while not queue.empty():
            tenant = queue.get_nowait()
            result = await migrate_tenant(pool, tenant, migrations)
            results.append(result)
            if on_result is not None:
                on_result(result)

    await asyncio.gather(*(work() for _ in range(max(1, min(jobs, len(behind))))))
    return results
