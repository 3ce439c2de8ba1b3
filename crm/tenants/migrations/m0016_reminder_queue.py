"""Task reminders wait in a company table, with one timer per company and moment.

A minute in which a company's hundred reminders fall due used to be a hundred
``platform.timers`` rows, each inserted, claimed and finished (three writes with their
index entries). Now each reminder is a ``reminders_queue`` row and the company has one
``reminders.due`` timer for the moment; the run deletes the due rows in the transaction
that stores the notifications. Reminder timers of the earlier kind (payload with a
``task_id``) still run: the handler takes them as one-off queue rows.
"""

from __future__ import annotations

import asyncpg

VERSION = 16
NAME = "reminder_queue"

SQL = """
CREATE TABLE "reminders_queue" ("id" SERIAL PRIMARY KEY NOT NULL, "task_id" INTEGER NOT NULL DEFAULT 0, "user_id" INTEGER NOT NULL DEFAULT 0, "offset_minutes" INTEGER NOT NULL DEFAULT 0, "version" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "remind_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE UNIQUE INDEX reminders_queue_key ON "reminders_queue" ("task_id", "user_id", "offset_minutes", "version");
CREATE INDEX reminders_queue_remind_at ON "reminders_queue" ("remind_at");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
