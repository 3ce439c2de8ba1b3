"""Imports that update existing clients: counters of updated and unchanged rows."""

from __future__ import annotations

import asyncpg

VERSION = 13
NAME = "import_updates"

# Expand only: columns with defaults that code of the previous release ignores.
SQL = """
ALTER TABLE "imports" ADD COLUMN "updated_rows" INTEGER NOT NULL DEFAULT 0, ADD COLUMN "unchanged_rows" INTEGER NOT NULL DEFAULT 0;
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
