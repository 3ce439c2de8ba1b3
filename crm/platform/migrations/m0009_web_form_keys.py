"""Web-form keys: the SHA-256 of each active web form's public key and the company and
form it belongs to, so a submission to ``POST /api/v1/forms/{key}`` finds its tenant in
one indexed lookup instead of searching every tenant schema.

Written in the same transaction as the tenant's ``web_forms`` row (a tenant scope's
connection reaches ``platform`` by its qualified name). A deactivated form has no row here.
"""

from __future__ import annotations

import asyncpg

VERSION = 9
NAME = "web_form_keys"

SQL = """
CREATE TABLE platform.web_form_keys (
    "key_hash" VARCHAR(64) PRIMARY KEY NOT NULL,
    "tenant_id" VARCHAR(32) NOT NULL REFERENCES platform.tenants ("id") ON DELETE CASCADE,
    "form_id" INTEGER NOT NULL
);
CREATE UNIQUE INDEX web_form_keys_form ON platform.web_form_keys ("tenant_id", "form_id");
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
