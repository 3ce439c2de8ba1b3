"""Users, API tokens, clients and the edition-seeded configuration tables."""

from __future__ import annotations

import asyncpg

VERSION = 1
NAME = "initial"

# Frozen copy of the DDL the table classes produced when this migration was written.
SQL = """
CREATE TABLE "users" ("id" SERIAL PRIMARY KEY NOT NULL, "email" VARCHAR(320) UNIQUE NOT NULL DEFAULT '', "name" VARCHAR(200) NOT NULL DEFAULT '', "password_hash" VARCHAR(200) NOT NULL DEFAULT '', "locale" VARCHAR(5) NOT NULL DEFAULT 'en', "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC', "role" VARCHAR(50) NOT NULL DEFAULT 'manager', "is_active" BOOLEAN NOT NULL DEFAULT true, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE TABLE "access_tokens" ("id" SERIAL PRIMARY KEY NOT NULL, "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "name" VARCHAR(100) NOT NULL DEFAULT '', "token_hash" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "last_used_at" TIMESTAMPTZ DEFAULT null, "expires_at" TIMESTAMPTZ DEFAULT null, "revoked_at" TIMESTAMPTZ DEFAULT null);
CREATE TABLE "clients" ("id" SERIAL PRIMARY KEY NOT NULL, "kind" VARCHAR(16) NOT NULL DEFAULT '', "name" VARCHAR(300) NOT NULL DEFAULT '', "phones" VARCHAR(32)[] NOT NULL DEFAULT '{}', "emails" VARCHAR(320)[] NOT NULL DEFAULT '{}', "status" VARCHAR(16) NOT NULL DEFAULT 'lead', "responsible_id" INTEGER REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp);
CREATE INDEX clients_name ON "clients" USING btree ("name");
CREATE TABLE "pipelines" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(50) UNIQUE NOT NULL DEFAULT '', "names" JSONB NOT NULL DEFAULT '{}', "position" INTEGER NOT NULL DEFAULT 0);
CREATE TABLE "pipeline_stages" ("id" SERIAL PRIMARY KEY NOT NULL, "pipeline_id" INTEGER NOT NULL REFERENCES "pipelines" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "key" VARCHAR(50) NOT NULL DEFAULT '', "names" JSONB NOT NULL DEFAULT '{}', "position" INTEGER NOT NULL DEFAULT 0, "probability" INTEGER NOT NULL DEFAULT 0, "kind" VARCHAR(8) NOT NULL DEFAULT 'open');
CREATE TABLE "roles" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(50) UNIQUE NOT NULL DEFAULT '', "names" JSONB NOT NULL DEFAULT '{}', "rights" JSONB NOT NULL DEFAULT '{}', "is_system" BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE "tenant_settings" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(100) UNIQUE NOT NULL DEFAULT '', "value" JSONB NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX pipeline_stages_pipeline_key ON "pipeline_stages" ("pipeline_id", "key");
CREATE INDEX access_tokens_user_id ON "access_tokens" ("user_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
