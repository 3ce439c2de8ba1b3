"""Extensions client search needs, once per database, in ``public`` where every tenant's
search_path finds them. pg_trgm is a trusted extension: the database owner may create it."""

from __future__ import annotations

import asyncpg

VERSION = 3
NAME = "search_extensions"

SQL = "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
