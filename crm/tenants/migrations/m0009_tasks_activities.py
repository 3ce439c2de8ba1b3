"""Tasks and activities."""

from __future__ import annotations

import asyncpg

VERSION = 9
NAME = "tasks_activities"

SQL = """
CREATE TABLE "tasks" ("id" SERIAL PRIMARY KEY NOT NULL, "title" VARCHAR(300) NOT NULL DEFAULT '', "description" TEXT NOT NULL DEFAULT '', "task_type" VARCHAR(50) DEFAULT null, "assignee_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "client_id" INTEGER REFERENCES "clients" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "deal_id" INTEGER REFERENCES "deals" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "due_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "remind_before_minutes" INTEGER[] NOT NULL DEFAULT '{}', "priority" VARCHAR(8) NOT NULL DEFAULT 'normal', "status" VARCHAR(12) NOT NULL DEFAULT 'open', "done_at" TIMESTAMPTZ DEFAULT null, "checklist" JSONB NOT NULL DEFAULT '[]', "rrule" VARCHAR(500) DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "activities" ("id" SERIAL PRIMARY KEY NOT NULL, "kind" VARCHAR(8) NOT NULL DEFAULT '', "client_id" INTEGER NOT NULL REFERENCES "clients" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "deal_id" INTEGER REFERENCES "deals" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "status" VARCHAR(8) NOT NULL DEFAULT 'done', "occurred_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "subject" VARCHAR(300) NOT NULL DEFAULT '', "comment" TEXT NOT NULL DEFAULT '', "direction" VARCHAR(3) DEFAULT null, "phone" VARCHAR(32) DEFAULT null, "duration_seconds" INTEGER DEFAULT null, "outcome" VARCHAR(50) DEFAULT null, "recording_url" VARCHAR(2000) DEFAULT null, "next_task_id" INTEGER REFERENCES "tasks" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE INDEX tasks_assignee_due ON "tasks" ("assignee_id", "due_at");
CREATE INDEX tasks_client_id ON "tasks" ("client_id");
CREATE INDEX tasks_deal_id ON "tasks" ("deal_id");
CREATE INDEX tasks_title_trgm ON "tasks" USING gin ((translate(lower(title), 'ё', 'е')) gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX activities_client_timeline ON "activities" ("client_id", "occurred_at" DESC);
CREATE INDEX activities_deal_id ON "activities" ("deal_id");
CREATE INDEX activities_author_id ON "activities" ("author_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
