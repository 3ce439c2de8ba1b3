"""The baselines of provisioning: building a new tenant schema by replaying migrations.

``SYNTHETIC_HISTORY`` is a made-up but realistic history of 30 small migrations (create
table, add column, widen a column, add index, backfill) that ends in exactly the shape
``current_schema_ddl()`` creates in one step; :func:`same_shape` checks that it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from crm.platform.migrate import Migration
from crm.platform.tenancy import checked_schema_name, set_tenant_search_path

NOW = "TIMESTAMPTZ NOT NULL DEFAULT current_timestamp"
PK = '"id" SERIAL PRIMARY KEY NOT NULL'

SYNTHETIC_HISTORY: tuple[tuple[str, str], ...] = (
    (
        "create_users",
        f'CREATE TABLE "users" ({PK}, "email" VARCHAR(255) UNIQUE NOT NULL DEFAULT \'\','
        " \"name\" VARCHAR(200) NOT NULL DEFAULT '', \"password_hash\" VARCHAR(200) NOT NULL DEFAULT '')",
    ),
    ("users_locale", 'ALTER TABLE "users" ADD COLUMN "locale" VARCHAR(5) NOT NULL DEFAULT \'en\''),
    ("users_timezone", 'ALTER TABLE "users" ADD COLUMN "timezone" VARCHAR(64) NOT NULL DEFAULT \'UTC\''),
    ("users_role", 'ALTER TABLE "users" ADD COLUMN "role" VARCHAR(50) NOT NULL DEFAULT \'manager\''),
    ("users_is_active", 'ALTER TABLE "users" ADD COLUMN "is_active" BOOLEAN NOT NULL DEFAULT true'),
    (
        "users_timestamps",
        f'ALTER TABLE "users" ADD COLUMN "created_at" {NOW}, ADD COLUMN "updated_at" {NOW}',
    ),
    ("users_email_320", 'ALTER TABLE "users" ALTER COLUMN "email" TYPE VARCHAR(320)'),
    (
        "create_access_tokens",
        f'CREATE TABLE "access_tokens" ({PK}, "user_id" INTEGER NOT NULL REFERENCES "users" ("id")'
        " ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, \"name\" VARCHAR(100) NOT NULL DEFAULT '',"
        f' "token_hash" VARCHAR(64) UNIQUE NOT NULL DEFAULT \'\', "created_at" {NOW})',
    ),
    ("tokens_last_used", 'ALTER TABLE "access_tokens" ADD COLUMN "last_used_at" TIMESTAMPTZ DEFAULT null'),
    ("tokens_expiry", 'ALTER TABLE "access_tokens" ADD COLUMN "expires_at" TIMESTAMPTZ DEFAULT null'),
    ("tokens_revocation", 'ALTER TABLE "access_tokens" ADD COLUMN "revoked_at" TIMESTAMPTZ DEFAULT null'),
    ("tokens_user_index", 'CREATE INDEX access_tokens_user_id ON "access_tokens" ("user_id")'),
    (
        "create_clients",
        f'CREATE TABLE "clients" ({PK}, "kind" VARCHAR(16) NOT NULL DEFAULT \'\','
        " \"name\" VARCHAR(300) NOT NULL DEFAULT '', \"status\" VARCHAR(16) NOT NULL DEFAULT 'lead',"
        f' "created_at" {NOW}, "updated_at" {NOW})',
    ),
    ("clients_phones", 'ALTER TABLE "clients" ADD COLUMN "phones" VARCHAR(32)[] NOT NULL DEFAULT \'{}\''),
    ("clients_emails", 'ALTER TABLE "clients" ADD COLUMN "emails" VARCHAR(320)[] NOT NULL DEFAULT \'{}\''),
    (
        "clients_responsible",
        'ALTER TABLE "clients" ADD COLUMN "responsible_id" INTEGER REFERENCES "users" ("id")'
        " ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null",
    ),
    ("clients_name_index", 'CREATE INDEX clients_name ON "clients" USING btree ("name")'),
    ("backfill_client_kind", 'UPDATE "clients" SET "kind" = \'company\' WHERE "kind" = \'\''),
    (
        "create_pipelines",
        f'CREATE TABLE "pipelines" ({PK}, "key" VARCHAR(50) UNIQUE NOT NULL DEFAULT \'\','
        " \"names\" JSONB NOT NULL DEFAULT '{}')",
    ),
    ("pipelines_position", 'ALTER TABLE "pipelines" ADD COLUMN "position" INTEGER NOT NULL DEFAULT 0'),
    (
        "create_pipeline_stages",
        f'CREATE TABLE "pipeline_stages" ({PK}, "pipeline_id" INTEGER NOT NULL REFERENCES "pipelines" ("id")'
        " ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, \"key\" VARCHAR(50) NOT NULL DEFAULT '',"
        ' "names" JSONB NOT NULL DEFAULT \'{}\', "position" INTEGER NOT NULL DEFAULT 0)',
    ),
    (
        "stages_probability",
        'ALTER TABLE "pipeline_stages" ADD COLUMN "probability" INTEGER NOT NULL DEFAULT 0',
    ),
    ("stages_kind", 'ALTER TABLE "pipeline_stages" ADD COLUMN "kind" VARCHAR(8) NOT NULL DEFAULT \'open\''),
    (
        "backfill_stage_kind",
        'UPDATE "pipeline_stages" SET "kind" = CASE WHEN "probability" = 100 THEN \'won\''
        " WHEN \"probability\" = 0 AND \"position\" > 0 THEN 'lost' ELSE 'open' END",
    ),
    (
        "stages_unique_key",
        'CREATE UNIQUE INDEX pipeline_stages_pipeline_key ON "pipeline_stages" ("pipeline_id", "key")',
    ),
    (
        "create_roles",
        f'CREATE TABLE "roles" ({PK}, "key" VARCHAR(50) UNIQUE NOT NULL DEFAULT \'\','
        " \"names\" JSONB NOT NULL DEFAULT '{}')",
    ),
    ("roles_rights", 'ALTER TABLE "roles" ADD COLUMN "rights" JSONB NOT NULL DEFAULT \'{}\''),
    ("roles_is_system", 'ALTER TABLE "roles" ADD COLUMN "is_system" BOOLEAN NOT NULL DEFAULT false'),
    (
        "create_tenant_settings",
        f'CREATE TABLE "tenant_settings" ({PK}, "key" VARCHAR(100) UNIQUE NOT NULL DEFAULT \'\','
        " \"value\" JSONB NOT NULL DEFAULT '{}')",
    ),
    (
        "backfill_users_updated_at",
        'UPDATE "users" SET "updated_at" = "created_at" WHERE "updated_at" < "created_at"',
    ),
)


def _sql_migration(version: int, name: str, sql: str) -> Migration:
    async def upgrade(connection: asyncpg.Connection) -> None:
        await connection.execute(sql)

    return Migration(version=version, name=name, upgrade=upgrade)


def synthetic_migrations() -> list[Migration]:
    return [_sql_migration(version, name, sql) for version, (name, sql) in enumerate(SYNTHETIC_HISTORY, start=1)]


async def replay(connection: asyncpg.Connection, tenant_id: str, schema: str, migrations: Sequence[Migration]) -> None:
    """Create the tenant (row at version 0 and empty schema), then apply each migration in
    its own transaction with its own version bump, as a replaying migration runner does."""
    schema = checked_schema_name(schema)
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO platform.tenants (id, slug, name, schema_name, edition, schema_version)"
            " VALUES ($1, $2, 'Replay', $3, 'business', 0)",
            tenant_id,
            f"replay-{tenant_id}",
            schema,
        )
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    for migration in migrations:
        async with connection.transaction():
            await set_tenant_search_path(connection, schema)
            await migration.upgrade(connection)
            await connection.execute(
                "UPDATE platform.tenants SET schema_version = $2, updated_at = now() WHERE id = $1",
                tenant_id,
                migration.version,
            )


# The drift test's notion of shape: columns and indexes, with the schema name taken out.
_COLUMNS = """
SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, character_maximum_length
FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, column_name
"""
_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname"


async def _shape(connection: asyncpg.Connection, schema: str) -> list[tuple[object, ...]]:
    rows = [*await connection.fetch(_COLUMNS, schema), *await connection.fetch(_INDEXES, schema)]
    return [
        tuple(value.replace(f"{schema}.", "") if isinstance(value, str) else value for value in row) for row in rows
    ]


async def same_shape(connection: asyncpg.Connection, schema: str, other: str) -> bool:
    return await _shape(connection, schema) == await _shape(connection, other)
