"""The tenant schema as the code expects it: the Piccolo table classes plus what the ORM
cannot declare (expression indexes). New tenants get exactly this in one step; the drift
test proves replaying the migrations produces the same thing."""

from __future__ import annotations

from piccolo.table import Table

from crm.tenants.clients.tables import Client
from crm.tenants.configuration.tables import Pipeline, PipelineStage, Role, TenantSetting
from crm.tenants.users.tables import AccessToken, User

# Ordered so that every table comes after the tables it references.
TENANT_TABLES: list[type[Table]] = [User, AccessToken, Client, Pipeline, PipelineStage, Role, TenantSetting]

EXTRA_DDL: tuple[str, ...] = (
    'CREATE UNIQUE INDEX pipeline_stages_pipeline_key ON "pipeline_stages" ("pipeline_id", "key")',
    'CREATE INDEX access_tokens_user_id ON "access_tokens" ("user_id")',
)


def current_schema_ddl() -> list[str]:
    """Statements that create a tenant schema's tables at the current version."""
    statements: list[str] = []
    for table in TENANT_TABLES:
        statements.extend(table.create_table().ddl)
    statements.extend(EXTRA_DDL)
    return statements
