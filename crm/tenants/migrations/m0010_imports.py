"""Import jobs."""

from __future__ import annotations

import asyncpg

VERSION = 10
NAME = "imports"

SQL = """
CREATE TABLE "imports" ("id" SERIAL PRIMARY KEY NOT NULL, "entity" VARCHAR(20) NOT NULL DEFAULT 'clients', "status" VARCHAR(10) NOT NULL DEFAULT 'queued', "filename" VARCHAR(255) NOT NULL DEFAULT '', "content" BYTEA NOT NULL DEFAULT '', "mapping" JSONB NOT NULL DEFAULT '{}', "on_duplicate" VARCHAR(8) NOT NULL DEFAULT 'skip', "total_rows" INTEGER NOT NULL DEFAULT 0, "processed_rows" INTEGER NOT NULL DEFAULT 0, "created_rows" INTEGER NOT NULL DEFAULT 0, "skipped_rows" INTEGER NOT NULL DEFAULT 0, "error_rows" INTEGER NOT NULL DEFAULT 0, "errors" JSONB NOT NULL DEFAULT '[]', "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "started_at" TIMESTAMPTZ DEFAULT null, "finished_at" TIMESTAMPTZ DEFAULT null);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
