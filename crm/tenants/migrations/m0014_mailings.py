"""Mailings: segments, templates, mailings, one delivery row per recipient, unsubscribes."""

from __future__ import annotations

import asyncpg

VERSION = 14
NAME = "mailings"

# Expand only: new tables, nothing the previous release reads.
SQL = """
CREATE TABLE "mailing_segments" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(200) NOT NULL DEFAULT '', "filters" JSONB NOT NULL DEFAULT '{}', "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "mailing_templates" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(200) NOT NULL DEFAULT '', "subject" VARCHAR(300) NOT NULL DEFAULT '', "text" TEXT NOT NULL DEFAULT '', "html" TEXT DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "mailings" ("id" SERIAL PRIMARY KEY NOT NULL, "name" VARCHAR(200) NOT NULL DEFAULT '', "segment_id" INTEGER NOT NULL REFERENCES "mailing_segments" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "template_id" INTEGER NOT NULL REFERENCES "mailing_templates" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "state" VARCHAR(10) NOT NULL DEFAULT 'draft', "scheduled_at" TIMESTAMPTZ DEFAULT null, "started_at" TIMESTAMPTZ DEFAULT null, "finished_at" TIMESTAMPTZ DEFAULT null, "total" INTEGER NOT NULL DEFAULT 0, "error" VARCHAR(300) DEFAULT null, "author_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "mailing_deliveries" ("id" SERIAL PRIMARY KEY NOT NULL, "mailing_id" INTEGER NOT NULL REFERENCES "mailings" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "client_id" INTEGER DEFAULT null, "email" VARCHAR(320) NOT NULL DEFAULT '', "state" VARCHAR(10) NOT NULL DEFAULT 'pending', "claim" VARCHAR(32) DEFAULT null, "lease_until" TIMESTAMPTZ DEFAULT null, "attempts" INTEGER NOT NULL DEFAULT 0, "sent_at" TIMESTAMPTZ DEFAULT null, "error" VARCHAR(300) DEFAULT null);
CREATE TABLE "mailing_unsubscribes" ("id" SERIAL PRIMARY KEY NOT NULL, "email" VARCHAR(320) UNIQUE NOT NULL DEFAULT '', "reason" VARCHAR(12) NOT NULL DEFAULT 'unsubscribed', "mailing_id" INTEGER DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE UNIQUE INDEX mailing_deliveries_recipient ON "mailing_deliveries" ("mailing_id", "email");
CREATE INDEX mailing_deliveries_state ON "mailing_deliveries" ("mailing_id", "state", "id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
