"""What every benchmark shares: a database of its own, settings, bulk tenants, statistics."""

from __future__ import annotations

import asyncio
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from crm.platform.migrate import Migration, migrate_platform, tenant_migrations
from crm.platform.passwords import hash_password
from crm.platform.services import Services, open_services
from crm.settings import Settings, load_settings
from crm.tenants.schema import current_schema_ddl
from tests.support import with_database

EMBEDDED_DIR = Path("/tmp/relay-crm-bench-pg18")  # noqa: S108 - the embedded server's user must enter it
SECRET_KEY = "bench-secret-key-" + "x" * 40
BENCH_PASSWORD = "correct horse battery"


# --- the database ------------------------------------------------------------------------


def server_url() -> str:
    """``CRM_DATABASE_URL``, else the embedded PostgreSQL 18 (started under /tmp)."""
    given = os.environ.get("CRM_DATABASE_URL")
    if given:
        return given
    from crm.platform.embedded import start_embedded_postgres

    return start_embedded_postgres(EMBEDDED_DIR)


@dataclass(frozen=True)
class BenchDatabase:
    url: str
    data_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``crm`` process (CLI or subprocess) on this database."""
        env = {
            "CRM_DATA_DIR": str(self.data_dir),
            "CRM_SECRET_KEY": SECRET_KEY,
            "CRM_DATABASE_URL": self.url,
            "CRM_LOG_LEVEL": "WARNING",
            # Benchmarks sign many companies up from a few addresses.
            "CRM_SIGNUP_RATE_LIMIT": "100000",
            "CRM_LOGIN_RATE_LIMIT": "100000",
        }
        env.update(extra)
        return env

    def settings(self) -> Settings:
        return load_settings(self.env())


@asynccontextmanager
async def bench_database() -> AsyncIterator[BenchDatabase]:
    """A fresh ``crm_bench_<hex>`` database and data dir, dropped at the end even on error."""
    admin_url = server_url()
    name = f"crm_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data_dir = Path(tempfile.mkdtemp(prefix="crm-bench-data-"))
    try:
        yield BenchDatabase(with_database(admin_url, name), data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def open_bench_services(database: BenchDatabase, *, pool_max: int) -> Services:
    """The one Services of this process, platform schema migrated."""
    services = await open_services(database.settings(), pool_max=pool_max)
    await migrate_platform(services.db.pool)
    return services


async def server_version(pool: asyncpg.Pool) -> str:
    version: str = await pool.fetchval("SHOW server_version")
    return version


# --- tenants in bulk -----------------------------------------------------------------------

_SAFE = re.compile(r"^[A-Za-z0-9_$=,+/@. -]+$")


def _literal(value: str) -> str:
    # Only values this module makes are interpolated; refuse anything else outright.
    if not _SAFE.fullmatch(value):
        raise ValueError(f"unexpected characters in {value!r}")
    return f"'{value}'"


def bulk_tenant_sql(index: int, password_hash: str, ddl: str, version: int) -> str:
    """One tenant in one round trip: its row, its schema by the one-step DDL, an admin user.

    The same statements as provisioning without the edition's seed rows (a few rows in
    small tables; they do not change the catalog, which is what grows with tenants)."""
    tenant_id = f"b{secrets.token_hex(8)}"[:12]
    slug = f"bulk-{index}-{tenant_id}"
    schema = f"t_{tenant_id}"
    email = f"admin@{slug}.example"
    return f"""
INSERT INTO platform.tenants (id, slug, name, schema_name, edition, status, schema_version)
VALUES ({_literal(tenant_id)}, {_literal(slug)}, {_literal(f"Bulk {index}")}, {_literal(schema)},
        'business', 'active', {version});
CREATE SCHEMA "{schema}";
SET LOCAL search_path = "{schema}", public;
{ddl};
INSERT INTO users (email, name, password_hash, role)
VALUES ({_literal(email)}, 'Bench Admin', {_literal(password_hash)}, 'admin');
INSERT INTO platform.identities (email, tenant_id, user_id) VALUES ({_literal(email)}, {_literal(tenant_id)}, 1);
"""


async def tenant_count(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM platform.tenants")
    return count


async def fill_tenants(pool: asyncpg.Pool, total: int, *, jobs: int = 4) -> tuple[int, float]:
    """Add tenants until there are ``total``, ``jobs`` at a time; return (added, seconds)."""
    missing = max(0, total - await tenant_count(pool))
    password_hash = await hash_password(BENCH_PASSWORD)
    ddl, version = ";\n".join(current_schema_ddl()), tenant_migrations()[-1].version
    started = time.perf_counter()
    queue = iter(range(missing))

    async def work() -> None:
        for index in queue:  # shared iterator: each index is taken once; ends with the range
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(bulk_tenant_sql(index, password_hash, ddl, version))

    await asyncio.gather(*(work() for _ in range(max(1, min(jobs, missing)))))
    return missing, time.perf_counter() - started


async def settle(pool: asyncpg.Pool) -> float:
    """CHECKPOINT after a bulk fill, so that writing its pages back does not land in the
    next measurement (a steady server has long flushed them); return the seconds it took."""
    started = time.perf_counter()
    await pool.execute("CHECKPOINT")
    return time.perf_counter() - started


async def catalog_size(pool: asyncpg.Pool) -> str:
    """pg_class rows and the size of pg_catalog, against shared_buffers."""
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM pg_class) AS relations,"
        " pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS size, current_setting('shared_buffers') AS buffers"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pg_catalog'"
    )
    assert row is not None
    return f"pg_class rows {row['relations']}, pg_catalog {row['size']}, shared_buffers {row['buffers']}"


# --- the change every migration benchmark applies -------------------------------------------

ADD_DEPARTMENT_SQL = (
    "ALTER TABLE users ADD COLUMN department VARCHAR(100) NOT NULL DEFAULT '';"
    " CREATE INDEX users_department ON users (department)"
)
REMOVE_DEPARTMENT_SQL = "ALTER TABLE users DROP COLUMN IF EXISTS department"


async def _add_department(connection: asyncpg.Connection) -> None:
    await connection.execute(ADD_DEPARTMENT_SQL)


def migrations_with_department() -> list[Migration]:
    """Today's tenant migrations plus version 2: a column with a default and an index on it."""
    base = tenant_migrations()
    return [*base, Migration(version=base[-1].version + 1, name="add_department", upgrade=_add_department)]


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def timed(work: Awaitable[object]) -> float:
    """Seconds ``work`` took to finish."""
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def p50_p95(values: Sequence[float]) -> str:
    return f"p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}  (n={len(values)})"
