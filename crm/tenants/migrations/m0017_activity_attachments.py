"""Files kept with an activity: the voice note (or audio file) a call was logged with.

Expand only: a new table that older code never reads. The bytes stay in the tenant's
schema, so a company's data remains one unit that dumps and moves whole.
"""

from __future__ import annotations

import asyncpg

VERSION = 17
NAME = "activity_attachments"

SQL = """
CREATE TABLE "activity_attachments" ("id" SERIAL PRIMARY KEY NOT NULL, "activity_id" INTEGER NOT NULL REFERENCES "activities" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "kind" VARCHAR(8) NOT NULL DEFAULT '', "mime_type" VARCHAR(100) NOT NULL DEFAULT 'application/octet-stream', "duration_seconds" INTEGER DEFAULT null, "size_bytes" INTEGER NOT NULL DEFAULT 0, "content" BYTEA NOT NULL DEFAULT '', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null);
CREATE INDEX activity_attachments_activity_id ON "activity_attachments" ("activity_id");
CREATE INDEX activity_attachments_author_id ON "activity_attachments" ("author_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
