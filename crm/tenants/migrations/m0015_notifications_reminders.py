"""Notifications, what reminders have been sent, and users' reminder preferences."""

from __future__ import annotations

import asyncpg

VERSION = 15
NAME = "notifications_reminders"

# Expand only: new tables, and user columns with defaults that older code ignores.
SQL = """
ALTER TABLE "users" ADD COLUMN "reminder_minutes" INTEGER[] NOT NULL DEFAULT '{15}', ADD COLUMN "notify_channels" VARCHAR(20)[] NOT NULL DEFAULT '{}', ADD COLUMN "digest_next_on" DATE DEFAULT null, ADD COLUMN "birthday" DATE DEFAULT null;
CREATE TABLE "notifications" ("id" SERIAL PRIMARY KEY NOT NULL, "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "kind" VARCHAR(30) NOT NULL DEFAULT '', "title" VARCHAR(300) NOT NULL DEFAULT '', "body" TEXT NOT NULL DEFAULT '', "entity" VARCHAR(30) DEFAULT null, "entity_id" INTEGER DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "read_at" TIMESTAMPTZ DEFAULT null);
CREATE INDEX notifications_user_id ON "notifications" ("user_id", "id");
CREATE INDEX notifications_unread ON "notifications" ("user_id") WHERE "read_at" IS NULL;
CREATE TABLE "reminders_sent" ("id" SERIAL PRIMARY KEY NOT NULL, "kind" VARCHAR(20) NOT NULL DEFAULT '', "subject_id" INTEGER NOT NULL DEFAULT 0, "user_id" INTEGER NOT NULL DEFAULT 0, "offset_minutes" INTEGER NOT NULL DEFAULT 0, "version" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "sent_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE UNIQUE INDEX reminders_sent_key ON "reminders_sent" ("kind", "subject_id", "user_id", "offset_minutes", "version");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
