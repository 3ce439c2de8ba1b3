"""Timers: work due at a time for a tenant (imports now; reminders and processes later).

The runner claims due rows with FOR UPDATE SKIP LOCKED, so its cost grows with the due
timers, never with the number of tenants; a lease lets another runner pick up a timer
whose runner died."""

from __future__ import annotations

import asyncpg

VERSION = 4
NAME = "timers"

SQL = """
CREATE TABLE platform.timers (
    "id" BIGSERIAL PRIMARY KEY,
    "tenant_id" VARCHAR(32) NOT NULL REFERENCES platform.tenants ("id") ON DELETE CASCADE,
    "kind" VARCHAR(100) NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "due_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "state" VARCHAR(10) NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lease_until" TIMESTAMPTZ,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "finished_at" TIMESTAMPTZ
);
CREATE INDEX timers_pending_due ON platform.timers ("due_at") WHERE "state" = 'pending';
CREATE INDEX timers_running_lease ON platform.timers ("lease_until") WHERE "state" = 'running';
CREATE INDEX timers_tenant_id ON platform.timers ("tenant_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
