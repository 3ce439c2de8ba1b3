"""Password reset links (single-use, one hour)."""

from __future__ import annotations

import asyncpg

VERSION = 5
NAME = "password_resets"

SQL = """
CREATE TABLE "password_resets" ("id" SERIAL PRIMARY KEY NOT NULL, "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "token_hash" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "used_at" TIMESTAMPTZ DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
