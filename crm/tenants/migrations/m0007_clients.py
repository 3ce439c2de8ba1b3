"""Clients in full: contacts, tax id, tags, custom fields, contact times; people at companies."""

from __future__ import annotations

import asyncpg

VERSION = 7
NAME = "clients"

# Expand only: columns with defaults, a new table, indexes.
SQL = """
ALTER TABLE "clients" ADD COLUMN "messengers" JSONB NOT NULL DEFAULT '[]', ADD COLUMN "addresses" JSONB NOT NULL DEFAULT '[]', ADD COLUMN "tax_id" VARCHAR(20) DEFAULT null, ADD COLUMN "source" VARCHAR(32) NOT NULL DEFAULT 'manual', ADD COLUMN "tags" VARCHAR(50)[] NOT NULL DEFAULT '{}', ADD COLUMN "custom" JSONB NOT NULL DEFAULT '{}', ADD COLUMN "birthday" DATE DEFAULT null, ADD COLUMN "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, ADD COLUMN "first_contact_at" TIMESTAMPTZ DEFAULT null, ADD COLUMN "last_contact_at" TIMESTAMPTZ DEFAULT null;
CREATE TABLE "client_relations" ("id" SERIAL PRIMARY KEY NOT NULL, "person_id" INTEGER NOT NULL REFERENCES "clients" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "company_id" INTEGER NOT NULL REFERENCES "clients" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "position" VARCHAR(200) NOT NULL DEFAULT '');
CREATE INDEX clients_name_trgm ON "clients" USING gin ((translate(lower(name), 'ё', 'е')) gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX clients_phones ON "clients" USING gin ("phones") WITH (fastupdate = off);
CREATE INDEX clients_emails ON "clients" USING gin ("emails") WITH (fastupdate = off);
CREATE INDEX clients_tax_id ON "clients" ("tax_id");
CREATE INDEX clients_responsible_id ON "clients" ("responsible_id");
CREATE INDEX clients_author_id ON "clients" ("author_id");
CREATE INDEX clients_last_contact_at ON "clients" ("last_contact_at");
CREATE INDEX clients_name_trgm_knn ON "clients" USING gist ((translate(lower(name), 'ё', 'е')) gist_trgm_ops);
CREATE INDEX clients_tags ON "clients" USING gin ("tags") WITH (fastupdate = off);
CREATE INDEX clients_custom ON "clients" USING gin ("custom" jsonb_path_ops) WITH (fastupdate = off);
CREATE INDEX clients_created_at ON "clients" ("created_at", "id");
CREATE INDEX clients_updated_at ON "clients" ("updated_at", "id");
CREATE UNIQUE INDEX client_relations_pair ON "client_relations" ("person_id", "company_id");
CREATE INDEX client_relations_company_id ON "client_relations" ("company_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
