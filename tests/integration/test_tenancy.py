"""Tenant scope: one transaction, the tenant's schema only, no nesting of other tenants."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import (
    TenantRef,
    TenantScopeError,
    checked_schema_name,
    read_in_tenant,
    scope_connection,
    tenant_scope,
)
from crm.tenants.users.tables import User
from tests.conftest import TenantFactory


async def _tenant(slug: str) -> TenantRef:
    tenant = await load_tenant(slug=slug)
    assert tenant is not None
    return tenant


async def test_queries_in_a_scope_see_only_that_tenant(make_tenant: TenantFactory, services: Services) -> None:
    first, second = await make_tenant(), await make_tenant()
    for signed_up in (first, second):
        async with tenant_scope(await _tenant(signed_up.slug)):
            emails = await User.select(User.email).output(as_list=True)
        assert emails == [signed_up.email]


async def test_another_tenants_scope_inside_a_scope_is_refused(make_tenant: TenantFactory, services: Services) -> None:
    first, second = await _tenant((await make_tenant()).slug), await _tenant((await make_tenant()).slug)
    async with tenant_scope(first):
        with pytest.raises(TenantScopeError):
            async with tenant_scope(second):
                pass
        # Re-entering the same tenant joins the open transaction.
        async with tenant_scope(first) as inner:
            assert await User.count() == 1
            assert inner.connection is not None


async def test_outside_a_scope_tenant_tables_do_not_resolve(make_tenant: TenantFactory, services: Services) -> None:
    await make_tenant()
    with pytest.raises(asyncpg.UndefinedTableError):
        await User.select(User.email)
    with pytest.raises(asyncpg.UndefinedTableError):
        await services.db.pool.fetch("SELECT email FROM users")


async def test_the_search_path_does_not_outlive_the_scope(make_tenant: TenantFactory, services: Services) -> None:
    """The pooled connection goes back with the default path: the next user sees no tenant."""
    tenant = await _tenant((await make_tenant()).slug)
    async with tenant_scope(tenant) as transaction:
        connection = transaction.connection
        assert tenant.schema in await connection.fetchval("SHOW search_path")
    # The connection is back in the pool; acquire every connection and check each.
    connections = [await services.db.pool.acquire() for _ in range(services.db.pool.get_size())]
    try:
        for pooled in connections:
            assert tenant.schema not in await pooled.fetchval("SHOW search_path")
    finally:
        for pooled in connections:
            await services.db.pool.release(pooled)


async def test_a_scope_that_need_not_be_durable_commits_without_waiting_for_the_flush_only_itself(
    make_tenant: TenantFactory, services: Services
) -> None:
    first, second = await _tenant((await make_tenant()).slug), await _tenant((await make_tenant()).slug)
    async with tenant_scope(first, durable=False) as transaction:
        connection = transaction.connection
        assert await connection.fetchval("SHOW synchronous_commit") == "off"
        assert first.schema in await connection.fetchval("SHOW search_path")
        assert await User.select(User.id).output(as_list=True)  # the first company's users
    async with tenant_scope(second) as transaction:  # the setting went with its transaction
        assert await transaction.connection.fetchval("SHOW synchronous_commit") == "on"
        assert second.schema in await transaction.connection.fetchval("SHOW search_path")


async def test_an_error_rolls_the_whole_scope_back(make_tenant: TenantFactory, services: Services) -> None:
    tenant = await _tenant((await make_tenant()).slug)
    with pytest.raises(RuntimeError):
        async with tenant_scope(tenant):
            await User.update({User.name: "Changed"}).where(User.id > 0)
            raise RuntimeError("boom")
    async with tenant_scope(tenant):
        assert await User.select(User.name).output(as_list=True) == ["Olga Petrova"]


async def test_a_scope_is_not_opened_inside_an_unscoped_transaction(services: Services) -> None:
    tenant = TenantRef(id="abc", slug="x", schema="t_abc", edition="start")
    async with services.db.engine.transaction():
        with pytest.raises(TenantScopeError):
            async with tenant_scope(tenant):
                pass


@pytest.mark.parametrize(
    "name", ["public", "t_", "t_UPPER", 't_x"; DROP SCHEMA platform; --', "platform", "t_" + "a" * 61]
)
def test_schema_names_are_validated_before_reaching_sql(name: str) -> None:
    with pytest.raises(TenantScopeError):
        checked_schema_name(name)


async def test_reads_survive_a_stale_prepared_statement(make_tenant: TenantFactory, services: Services) -> None:
    """After a column changes type, pooled connections hold statements planned for the old
    shape; a read fails once inside its transaction and read_in_tenant runs it again."""
    tenant = await _tenant((await make_tenant()).slug)
    query = "SELECT id, name FROM users ORDER BY id"

    async def hold_and_read() -> None:
        async with tenant_scope(tenant):
            connection = scope_connection()
            await connection.fetch(query)
            await connection.execute("SELECT pg_sleep(0.05)")

    # Every pooled connection prepares (and caches) the statement.
    await asyncio.gather(*(hold_and_read() for _ in range(services.db.pool.get_max_size())))
    await services.db.pool.execute(f'ALTER TABLE "{tenant.schema}".users ALTER COLUMN name TYPE text')

    with pytest.raises(asyncpg.InvalidCachedStatementError):
        async with tenant_scope(tenant):
            await scope_connection().fetch(query)

    async def read() -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await scope_connection().fetch(query)
        return rows

    for _ in range(services.db.pool.get_max_size()):
        rows = await read_in_tenant(tenant, read)
        assert [row["name"] for row in rows] == ["Olga Petrova"]
