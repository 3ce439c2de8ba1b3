"""Tenants, login identities and rate-limit windows."""

from __future__ import annotations

import asyncpg

VERSION = 1
NAME = "initial"

SQL = """
CREATE TABLE platform.tenants (
    "id" VARCHAR(32) PRIMARY KEY NOT NULL DEFAULT '',
    "slug" VARCHAR(63) UNIQUE NOT NULL DEFAULT '',
    "name" VARCHAR(200) NOT NULL DEFAULT '',
    "schema_name" VARCHAR(63) UNIQUE NOT NULL DEFAULT '',
    "edition" VARCHAR(32) NOT NULL DEFAULT '',
    "status" VARCHAR(16) NOT NULL DEFAULT 'active',
    "schema_version" INTEGER NOT NULL DEFAULT 0,
    "locale" VARCHAR(5) NOT NULL DEFAULT 'en',
    "timezone" VARCHAR(64) NOT NULL DEFAULT 'UTC',
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
-- "Which tenants are behind" must stay one cheap query at thousands of tenants.
CREATE INDEX tenants_schema_version ON platform.tenants (schema_version);

CREATE TABLE platform.identities (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "email" VARCHAR(320) NOT NULL DEFAULT '',
    "tenant_id" VARCHAR(32) NOT NULL DEFAULT '' REFERENCES platform.tenants (id) ON DELETE CASCADE,
    "user_id" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
CREATE UNIQUE INDEX identities_email_tenant ON platform.identities (email, tenant_id);

CREATE TABLE platform.rate_limits (
    "id" SERIAL PRIMARY KEY NOT NULL,
    "key" VARCHAR(200) UNIQUE NOT NULL DEFAULT '',
    "window_start" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    "hits" INTEGER NOT NULL DEFAULT 0
);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
