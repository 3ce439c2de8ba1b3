"""The audit log: append-only (triggers refuse UPDATE, DELETE, TRUNCATE), hash-chained."""

from __future__ import annotations

import asyncpg

VERSION = 2
NAME = "audit_log"

# Frozen copy of the DDL the table classes produced when this migration was written.
SQL = """
CREATE TABLE "audit_log" ("id" BIGSERIAL PRIMARY KEY NOT NULL, "occurred_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "actor_kind" VARCHAR(16) NOT NULL DEFAULT '', "actor_id" INTEGER DEFAULT null, "actor_label" VARCHAR(320) NOT NULL DEFAULT '', "channel" VARCHAR(16) NOT NULL DEFAULT '', "action" VARCHAR(64) NOT NULL DEFAULT '', "entity" VARCHAR(64) NOT NULL DEFAULT '', "entity_id" VARCHAR(64) DEFAULT null, "changes" JSONB NOT NULL DEFAULT '{}', "request_id" VARCHAR(64) DEFAULT null, "client_address" VARCHAR(64) DEFAULT null, "prev_hash" VARCHAR(64) NOT NULL DEFAULT '', "hash" VARCHAR(64) NOT NULL DEFAULT '');
CREATE INDEX audit_log_action ON "audit_log" USING btree ("action");
CREATE TABLE "audit_head" ("id" SERIAL PRIMARY KEY NOT NULL, "last_hash" VARCHAR(64) NOT NULL DEFAULT '', "row_count" INTEGER NOT NULL DEFAULT 0);
CREATE INDEX audit_log_entity ON "audit_log" ("entity", "entity_id");
CREATE INDEX audit_log_actor_id ON "audit_log" ("actor_id");
CREATE INDEX audit_log_occurred_at ON "audit_log" ("occurred_at");
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "audit_log" FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "audit_log" FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
