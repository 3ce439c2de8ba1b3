"""Deals with their stage history, and leads."""

from __future__ import annotations

import asyncpg

VERSION = 8
NAME = "deals_leads"

SQL = """
CREATE TABLE "deals" ("id" SERIAL PRIMARY KEY NOT NULL, "title" VARCHAR(300) NOT NULL DEFAULT '', "client_id" INTEGER NOT NULL REFERENCES "clients" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "pipeline_id" INTEGER NOT NULL REFERENCES "pipelines" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "stage_id" INTEGER NOT NULL REFERENCES "pipeline_stages" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "amount" NUMERIC(14, 2) NOT NULL DEFAULT 0, "currency" VARCHAR(3) NOT NULL DEFAULT 'RUB', "probability" INTEGER NOT NULL DEFAULT 0, "expected_close_on" DATE DEFAULT null, "status" VARCHAR(8) NOT NULL DEFAULT 'open', "lost_reason" VARCHAR(300) DEFAULT null, "closed_at" TIMESTAMPTZ DEFAULT null, "responsible_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "custom" JSONB NOT NULL DEFAULT '{}', "stage_changed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "deal_stage_changes" ("id" SERIAL PRIMARY KEY NOT NULL, "deal_id" INTEGER NOT NULL REFERENCES "deals" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "from_stage_id" INTEGER DEFAULT null, "to_stage_id" INTEGER NOT NULL DEFAULT 0, "changed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "actor_id" INTEGER DEFAULT null);
CREATE TABLE "leads" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(300) NOT NULL DEFAULT '', "company_name" VARCHAR(300) NOT NULL DEFAULT '', "phones" VARCHAR(32)[] NOT NULL DEFAULT '{}', "emails" VARCHAR(320)[] NOT NULL DEFAULT '{}', "source" VARCHAR(16) NOT NULL DEFAULT 'manual', "status" VARCHAR(16) NOT NULL DEFAULT 'new', "note" TEXT NOT NULL DEFAULT '', "disqualified_reason" VARCHAR(300) DEFAULT null, "custom" JSONB NOT NULL DEFAULT '{}', "responsible_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "client_id" INTEGER REFERENCES "clients" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "deal_id" INTEGER REFERENCES "deals" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "converted_at" TIMESTAMPTZ DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE INDEX deals_client_id ON "deals" ("client_id");
CREATE INDEX deals_stage_id ON "deals" ("stage_id");
CREATE INDEX deals_responsible_id ON "deals" ("responsible_id");
CREATE INDEX deal_stage_changes_deal_id ON "deal_stage_changes" ("deal_id", "changed_at");
CREATE INDEX deals_title_trgm ON "deals" USING gin ((translate(lower(title), 'ё', 'е')) gin_trgm_ops) WITH (fastupdate = off);
CREATE INDEX leads_responsible_id ON "leads" ("responsible_id");
CREATE INDEX leads_status ON "leads" ("status");
CREATE INDEX leads_client_id ON "leads" ("client_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
