"""The database: one Piccolo engine over one asyncpg pool, shared by platform and tenants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from crm.settings import Settings


class CrmEngine(PostgresEngine):
    """Piccolo's engine without the connection it opens at construction to warn about old
    servers: construction must not touch the network (the readiness probe checks the server)."""

    async def check_version(self) -> None:
        return None


@dataclass
class Database:
    url: str
    engine: CrmEngine

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.engine.pool is not None, "the connection pool is not open"
        return self.engine.pool

    async def close(self) -> None:
        if self.engine.pool is not None:
            await self.engine.close_connection_pool()


def database_url(settings: Settings) -> str:
    """``CRM_DATABASE_URL``, or the embedded server's URL (starting it if needed)."""
    if settings.database.url:
        return settings.database.url
    from crm.platform.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def make_engine(url: str) -> CrmEngine:
    # search_path 'public' on every pooled connection: outside a tenant scope no tenant
    # table resolves, so a query that forgot its scope fails instead of guessing.
    # TimeZone UTC: timestamps rendered by the server (JSON built in SQL, ::text) read the
    # same on every server, whatever its configured zone.
    config: dict[str, Any] = {
        "dsn": url,
        "server_settings": {"search_path": "public", "application_name": "relay-crm", "TimeZone": "UTC"},
    }
    return CrmEngine(config=config, extensions=())


async def keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's reset query.

    asyncpg's default resets every session on release (``pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL``): one more round trip per checkout, ~10% of a card request.
    Our code changes no session state: tenant scopes set ``search_path`` transaction-locally
    and locks are transaction-scoped. asyncpg still rolls back an open transaction before
    calling this hook. Code that ever needs session state (LISTEN, session advisory locks)
    must hold its own connection outside the pool."""


def bind_tables(engine: CrmEngine, tables: Iterable[type[Table]]) -> None:
    """Point Piccolo table classes at our engine (instead of a piccolo_conf module)."""
    global _bound
    for table in tables:
        table._meta.db = engine
    _bound = engine


# Piccolo queries find their transaction through the engine their table class is bound
# to, so there is one engine per process and tenant scopes open their transaction on it.
_bound: CrmEngine | None = None


def bound_engine() -> CrmEngine:
    """The engine the table classes are bound to (set by :func:`connect_database`)."""
    if _bound is None:
        raise RuntimeError("no database is connected in this process")
    return _bound


async def connect_database(url: str, *, pool_min: int = 2, pool_max: int = 10, bind: bool = True) -> Database:
    """Open the pool and (unless ``bind`` is False) bind every table class of the product to it."""
    from crm.platform.tables import PLATFORM_TABLES
    from crm.tenants.schema import TENANT_TABLES

    engine = make_engine(url)
    await engine.start_connection_pool(min_size=pool_min, max_size=pool_max, reset=keep_session)
    if bind:
        bind_tables(engine, [*PLATFORM_TABLES, *TENANT_TABLES])
    return Database(url=url, engine=engine)
