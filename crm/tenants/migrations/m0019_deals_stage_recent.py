"""The kanban's index: a stage's deals, most recently moved first.

The board (crm/tenants/deals/board.py) reads each stage's latest deals and each stage's
count and sum by currency. With an index on ``stage_id`` alone PostgreSQL sorted every deal
of the stage for the cards and read every deal's row for the sums (~28 ms at 60,000 deals in
a pipeline). Walking this one reads only the cards shown, and the sums come from the index
alone (the columns the sums and the rights condition need are included). It also serves
every look-up by stage, so the old single-column index goes. Code of the previous
release runs the same queries on either index.
"""

from __future__ import annotations

import asyncpg

VERSION = 19
NAME = "deals_stage_recent"

SQL = """
CREATE INDEX deals_stage_recent ON "deals" ("stage_id", "stage_changed_at" DESC, "id" DESC)
    INCLUDE ("currency", "amount", "responsible_id", "author_id");
DROP INDEX IF EXISTS deals_stage_id;
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
