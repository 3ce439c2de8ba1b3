"""Tenant scope: the one rule that keeps tenants apart (DESIGN.md §3).

All tenant work runs inside :func:`tenant_scope`: one transaction on one pooled
connection whose ``search_path`` is set transaction-locally to the tenant's schema.
A scope for another tenant inside an open scope is an error, never a switch.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from asyncpg.transaction import TransactionState
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from crm.platform.db import bound_engine

T = TypeVar("T")

SCHEMA_NAME = re.compile(r"^t_[a-z0-9_]{1,60}$")


class TenantScopeError(RuntimeError):
    """Misuse of tenant scopes: nesting another tenant, or a bad schema name."""


@dataclass(frozen=True)
class TenantRef:
    """What the edge knows about a tenant once it has resolved it."""

    id: str
    slug: str
    schema: str
    edition: str
    status: str = "active"

    @property
    def is_active(self) -> bool:
        return self.status == "active"


_current_tenant: ContextVar[TenantRef | None] = ContextVar("crm_current_tenant", default=None)


def schema_for(tenant_id: str) -> str:
    return checked_schema_name(f"t_{tenant_id}")


def checked_schema_name(name: str) -> str:
    """Return ``name`` if it is a valid tenant schema name; it is interpolated into SQL."""
    if not SCHEMA_NAME.fullmatch(name):
        raise TenantScopeError(f"not a tenant schema name: {name!r}")
    return name


async def set_tenant_search_path(connection: asyncpg.Connection, schema: str) -> None:
    """Point this transaction (only) at the tenant's schema."""
    await connection.execute("SELECT set_config('search_path', $1, true)", f'"{checked_schema_name(schema)}", public')


class TenantTransaction(PostgresTransaction):
    """Piccolo's transaction, begun together with the tenant's ``search_path``.

    ``BEGIN`` and the transaction-local ``set_config`` go to the server as one simple-query
    string: one round trip instead of two for every tenant scope, i.e. every request. The
    asyncpg Transaction object is then marked as started, exactly as its own ``start()``
    would leave it, so commit, rollback and nested ``connection.transaction()`` savepoints
    work as usual (tests/integration/test_tenancy.py pins this against asyncpg upgrades)."""

    def __init__(self, engine: PostgresEngine, schema: str, *, durable: bool = True) -> None:
        super().__init__(engine)
        self._begin = f"BEGIN; SELECT set_config('search_path', '\"{checked_schema_name(schema)}\", public', true)"
        if not durable:
            self._begin += ", set_config('synchronous_commit', 'off', true)"

    async def begin(self) -> None:
        connection = self.connection
        try:
            if connection._top_xact is not None or connection.is_in_transaction():
                raise TenantScopeError("a pooled connection is already inside a transaction")
            await connection.execute(self._begin)
        except BaseException:
            # Piccolo does not release the connection when begin() fails; do it here.
            assert self.engine.pool is not None
            await self.engine.pool.release(connection)
            raise
        # Pooled connections are proxies with fixed slots: mark the wrapped connection.
        getattr(connection, "_con", connection)._top_xact = self.transaction
        self.transaction._state = TransactionState.STARTED


@asynccontextmanager
async def tenant_scope(tenant: TenantRef, *, durable: bool = True) -> AsyncIterator[PostgresTransaction]:
    """Open one transaction scoped to ``tenant``; Piccolo queries inside run in it.

    Re-entering the scope of the same tenant joins the open transaction; entering
    another tenant's scope raises :class:`TenantScopeError`. ``durable=False`` commits
    without waiting for the WAL flush — only for work that a server crash may forget as
    a whole because it will be done again (docs/architecture.md, "Bookkeeping commits
    without waiting for the disk").
    """
    engine = bound_engine()
    active = _current_tenant.get()
    if active is not None:
        if active.id != tenant.id:
            raise TenantScopeError(
                f"a scope for tenant {active.slug!r} is open; refusing to open one for {tenant.slug!r}"
            )
        transaction = engine.current_transaction.get()
        assert transaction is not None
        yield transaction
        return
    if engine.current_transaction.get() is not None:
        # Joining an unscoped transaction would leave its search_path pointing at the
        # tenant after the scope ends; a tenant scope always owns its transaction.
        raise TenantScopeError("a tenant scope must not be opened inside another transaction")
    token = _current_tenant.set(tenant)
    try:
        async with TenantTransaction(engine, tenant.schema, durable=durable) as transaction:
            yield transaction
    finally:
        _current_tenant.reset(token)


def current_tenant() -> TenantRef | None:
    """The tenant whose scope is open in this context, if any (for work scheduled from inside it)."""
    return _current_tenant.get()


def scope_connection() -> asyncpg.Connection:
    """The connection of the open tenant scope, for the few queries written in SQL."""
    transaction = bound_engine().current_transaction.get()
    if transaction is None or _current_tenant.get() is None:
        raise TenantScopeError("no tenant scope is open")
    connection: asyncpg.Connection = transaction.connection
    return connection


STALE_STATEMENT_ATTEMPTS = 3


async def read_in_tenant(tenant: TenantRef, work: Callable[[], Awaitable[T]]) -> T:
    """Run a read-only unit of work in the tenant's scope, retried on a stale statement.

    While tenants migrate, a pooled connection may hold a prepared statement planned for a
    table's previous shape; inside a transaction asyncpg cannot re-prepare it and raises
    ``InvalidCachedStatementError`` (after dropping the stale entry). A read is safe to run
    again in a fresh transaction; a few attempts cover landing on other stale connections.
    """
    if _current_tenant.get() is not None:
        # Inside an open scope the transaction is already failed; only the owner may retry.
        async with tenant_scope(tenant):
            return await work()
    for attempt in range(1, STALE_STATEMENT_ATTEMPTS + 1):
        try:
            async with tenant_scope(tenant):
                return await work()
        except asyncpg.InvalidCachedStatementError:
            if attempt == STALE_STATEMENT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
