"""The kanban's index: a stage's deals, most recently moved first.

The board (crm/tenants/deals/board.py) reads each stage's latest deals; with an index on
``stage_id`` alone PostgreSQL sorted every deal of the stage for each column (~20 ms at
40,000 deals in a pipeline); walking this one reads only the cards shown (~10 ms). It also
serves every look-up by stage, so the old single-column index goes. Code of the previous
release runs the same queries on either index.
"""

from __future__ import annotations

import asyncpg

VERSION = 19
NAME = "deals_stage_recent"

SQL = """
CREATE INDEX deals_stage_recent ON "deals" ("stage_id", "stage_changed_at" DESC, "id" DESC);
DROP INDEX IF EXISTS deals_stage_id;
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
