"""Migrations: no drift between table classes, history and new tenants; a rolling runner
that resumes, isolates failures and reports who is behind."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest

from crm.platform.migrate import (
    Migration,
    MigrationError,
    discover_migrations,
    latest_version,
    migrate_tenants,
    platform_migrations,
    platform_schema_version,
    tenant_migrations,
    tenants_behind,
)
from crm.platform.services import Services
from crm.platform.tables import PLATFORM_TABLES
from crm.platform.tenancy import set_tenant_search_path
from crm.tenants.schema import TENANT_TABLES
from tests.conftest import TenantFactory

COLUMNS = """
SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length
FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name
"""
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname"
# pg_trigger, not information_schema.triggers: the latter leaves out TRUNCATE triggers.
TRIGGERS = """
SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
"""
FUNCTIONS = "SELECT routine_name, routine_definition FROM information_schema.routines WHERE routine_schema = $1"


async def _shape(connection: asyncpg.Connection, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Columns, indexes, triggers and functions of a schema, with its name taken out."""

    def anonymous(value: object) -> object:
        return value.replace(f"{schema}.", "") if isinstance(value, str) else value

    shape = {}
    for name, query in (("columns", COLUMNS), ("indexes", INDEXES), ("triggers", TRIGGERS), ("functions", FUNCTIONS)):
        shape[name] = sorted(tuple(anonymous(value) for value in row) for row in await connection.fetch(query, schema))
    return shape


async def _schema_of(services: Services, slug: str) -> str:
    schema: str = await services.db.pool.fetchval("SELECT schema_name FROM platform.tenants WHERE slug = $1", slug)
    return schema


async def test_replayed_history_new_tenants_and_table_classes_agree(
    make_tenant: TenantFactory, services: Services
) -> None:
    provisioned = await _schema_of(services, (await make_tenant()).slug)
    replayed = f"t_drift_{secrets.token_hex(4)}"
    async with services.db.pool.acquire() as connection:
        async with connection.transaction():
            await connection.execute(f'CREATE SCHEMA "{replayed}"')
            await set_tenant_search_path(connection, replayed)
            for migration in tenant_migrations():
                await migration.upgrade(connection)
        try:
            replayed_shape = await _shape(connection, replayed)
            assert replayed_shape == await _shape(connection, provisioned)
            triggers = [name for name, _ in replayed_shape["triggers"]]
            assert triggers == ["audit_log_append_only", "audit_log_no_truncate"]
            columns = replayed_shape["columns"]
        finally:
            await connection.execute(f'DROP SCHEMA "{replayed}" CASCADE')

    in_database: dict[str, set[str]] = {}
    for table, column, *_ in columns:
        in_database.setdefault(str(table), set()).add(str(column))
    in_code = {t._meta.tablename: {c._meta.db_column_name for c in t._meta.columns} for t in TENANT_TABLES}
    assert in_database == in_code


async def test_platform_tables_match_the_platform_schema(services: Services) -> None:
    rows = await services.db.pool.fetch(COLUMNS, "platform")
    in_database: dict[str, set[str]] = {}
    for row in rows:
        in_database.setdefault(row["table_name"], set()).add(row["column_name"])
    in_database.pop("schema_migrations")  # the runner's own bookkeeping, not a table class
    in_code = {t._meta.tablename: {c._meta.db_column_name for c in t._meta.columns} for t in PLATFORM_TABLES}
    assert in_database == in_code
    async with services.db.pool.acquire() as connection:
        assert await platform_schema_version(connection) == latest_version(platform_migrations())


def _with_extra_step(upgrade_sql: str, *, fail_in: str | None = None) -> list[Migration]:
    async def upgrade(connection: asyncpg.Connection) -> None:
        await connection.execute(upgrade_sql)
        if fail_in and await connection.fetchval("SELECT current_schema()") == fail_in:
            raise RuntimeError("simulated failure after the DDL ran")

    base = tenant_migrations()
    return [*base, Migration(version=latest_version(base) + 1, name="add_nickname", upgrade=upgrade)]


ADD_NICKNAME = (
    "ALTER TABLE users ADD COLUMN nickname VARCHAR(50) NOT NULL DEFAULT '';"
    " CREATE INDEX users_nickname ON users (nickname)"
)


async def test_a_failing_tenant_is_reported_and_the_rest_migrate_then_resume(
    make_tenant: TenantFactory, services: Services
) -> None:
    slugs = [(await make_tenant()).slug for _ in range(3)]
    broken = await _schema_of(services, slugs[1])
    migrations = _with_extra_step(ADD_NICKNAME, fail_in=broken)
    target = latest_version(migrations)

    results = await migrate_tenants(services.db.pool, migrations, jobs=2, slugs=slugs)

    by_slug = {result.slug: result for result in results}
    assert set(by_slug) == set(slugs)
    assert not by_slug[slugs[1]].ok and "simulated failure" in (by_slug[slugs[1]].error or "")
    assert by_slug[slugs[0]].ok and by_slug[slugs[2]].ok
    assert [t.slug for t in await tenants_behind(services.db.pool, target, slugs=slugs)] == [slugs[1]]
    # The failed tenant's DDL was rolled back with its transaction.
    has_column = await services.db.pool.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'nickname'",
        broken,
    )
    assert has_column == 0

    resumed = await migrate_tenants(services.db.pool, _with_extra_step(ADD_NICKNAME), jobs=2, slugs=slugs)
    assert [(r.slug, r.ok, r.to_version) for r in resumed] == [(slugs[1], True, target)]
    assert await tenants_behind(services.db.pool, target, slugs=slugs) == []


async def test_rerunning_a_finished_migration_does_nothing(make_tenant: TenantFactory, services: Services) -> None:
    slug = (await make_tenant()).slug
    assert await migrate_tenants(services.db.pool, slugs=[slug]) == []


def test_migration_versions_must_be_contiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "gappy_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for version in (1, 3):
        (package / f"m000{version}_step.py").write_text(
            f"VERSION = {version}\nNAME = 'step'\nasync def upgrade(connection):\n    pass\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MigrationError, match="expected migration version 2, found 3"):
        discover_migrations("gappy_migrations")


async def test_a_tenant_held_by_another_runner_is_skipped(make_tenant: TenantFactory, services: Services) -> None:
    slugs = [(await make_tenant()).slug for _ in range(2)]
    held = await services.db.pool.fetchval("SELECT id FROM platform.tenants WHERE slug = $1", slugs[0])
    migrations = _with_extra_step(ADD_NICKNAME)
    async with services.db.pool.acquire() as other_runner, other_runner.transaction():
        await other_runner.execute("SELECT 1 FROM platform.tenants WHERE id = $1 FOR UPDATE", held)
        results = {r.slug: r for r in await migrate_tenants(services.db.pool, migrations, jobs=2, slugs=slugs)}
    assert results[slugs[0]].skipped and results[slugs[0]].ok
    assert results[slugs[1]].ok and not results[slugs[1]].skipped
    assert [t.slug for t in await tenants_behind(services.db.pool, latest_version(migrations), slugs=slugs)] == [
        slugs[0]
    ]
