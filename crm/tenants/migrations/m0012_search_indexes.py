"""Search: an index for exact (folded) names, one for phone suffixes, and no GiST twin of
the client name index.

The literal statements are this migration's own (later changes to CLIENT_DDL get their own
migration); the drift test proves they produce what new tenants get.
"""

from __future__ import annotations

import asyncpg

VERSION = 12
NAME = "search_indexes"

# The GiST index lost to GIN clients_name_trgm on every measured query (54-66 ms against
# 1-4 ms at 200,000 clients) and slowed every write; code of the previous release still
# works without it (its ORDER BY <->> is then computed, not walked). The function and the
# indexes only add: the previous release never calls the function.
SQL = """
DROP INDEX IF EXISTS clients_name_trgm_knn;
CREATE INDEX clients_name_folded ON "clients" ((translate(lower(name), 'ё', 'е')));
CREATE FUNCTION search_phones(phones varchar[]) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(phones, ' ') || ' ' $$;
CREATE INDEX clients_phones_trgm ON "clients" USING gin ((search_phones(phones)) gin_trgm_ops) WITH (fastupdate = off);
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
