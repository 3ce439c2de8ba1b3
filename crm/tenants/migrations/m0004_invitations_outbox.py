"""Invitations (single-use, expiring) and the mail outbox."""

from __future__ import annotations

import asyncpg

VERSION = 4
NAME = "invitations_outbox"

SQL = """
CREATE TABLE "invitations" ("id" SERIAL PRIMARY KEY NOT NULL, "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "token_hash" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "used_at" TIMESTAMPTZ DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "mail_outbox" ("id" SERIAL PRIMARY KEY NOT NULL, "to_address" VARCHAR(320) NOT NULL DEFAULT '', "subject" VARCHAR(300) NOT NULL DEFAULT '', "body" TEXT NOT NULL DEFAULT '', "kind" VARCHAR(50) NOT NULL DEFAULT '', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "sent_at" TIMESTAMPTZ DEFAULT null);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
