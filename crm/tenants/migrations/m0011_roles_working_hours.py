"""Users: further roles besides the main one, and working hours."""

from __future__ import annotations

import asyncpg

VERSION = 11
NAME = "roles_working_hours"

# Expand only: columns with defaults that code of the previous release ignores.
SQL = """
ALTER TABLE "users" ADD COLUMN "extra_roles" VARCHAR(50)[] NOT NULL DEFAULT '{}', ADD COLUMN "working_hours" JSONB NOT NULL DEFAULT '{"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}';
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
