"""Failed-login counters and lockouts, per company + e-mail (known or not)."""

from __future__ import annotations

import asyncpg

VERSION = 2
NAME = "login_failures"

SQL = """
CREATE TABLE platform.login_failures (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "key" VARCHAR(400) UNIQUE NOT NULL DEFAULT '',
    "failures" INTEGER NOT NULL DEFAULT 0,
    "locked_until" TIMESTAMPTZ DEFAULT null,
    "last_failure_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
