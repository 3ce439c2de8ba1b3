"""Optional TOTP two-factor login: the encrypted secret, when it was enabled, the last step used."""

from __future__ import annotations

import asyncpg

VERSION = 6
NAME = "two_factor"

# Expand only: nullable columns that code of the previous release ignores.
SQL = """
ALTER TABLE "users" ADD COLUMN "totp_secret" VARCHAR(200) DEFAULT null, ADD COLUMN "totp_enabled_at" TIMESTAMPTZ DEFAULT null, ADD COLUMN "totp_last_step" BIGINT DEFAULT null;
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
