"""Web forms: forms on a company's website that create leads (crm/tenants/leads/web_forms.py).

Expand only: a new table that older code never reads. Its keys are also indexed in
``platform.web_form_keys`` (platform migration 9), written in the same transaction.
"""

from __future__ import annotations

import asyncpg

VERSION = 18
NAME = "web_forms"

SQL = """
CREATE TABLE "web_forms" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(200) NOT NULL DEFAULT '', "public_key" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "responsible_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "allowed_origins" VARCHAR(255)[] NOT NULL DEFAULT '{}', "is_active" BOOLEAN NOT NULL DEFAULT true, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null);
CREATE INDEX web_forms_responsible_id ON "web_forms" ("responsible_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
