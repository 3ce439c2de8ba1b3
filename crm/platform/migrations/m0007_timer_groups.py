"""Timers: claimed in tenant order within a due time, and finished ones purged.

The scheduler claims due timers ``ORDER BY due_at, tenant_id`` so that a company's timers
due together come out together and run as one group (batch handlers); the index of
pending rows gains the tenant column to give that order without a sort. The index of
running leases from migration 4 has been superseded by ``timers_lease`` (queued and
running) since migration 6 and only cost every run an index insertion; it
goes. So does the index on the tenant: nothing looks timers up by tenant but the cascade
when a company is deleted, a rare operation that may read the table, while every claim
and every finish paid for an entry in it — and its depth grows with the number of
companies, which made claims dearer in a deployment with many of them. Done
timers are deleted by the scheduler some days after they finish (``purge_done``); the
partial index on their finishing time lets it find them without reading the table.
"""

from __future__ import annotations

import asyncpg

VERSION = 7
NAME = "timer_groups"

SQL = """
CREATE INDEX timers_pending_due_tenant ON platform.timers ("due_at", "tenant_id") WHERE "state" = 'pending';
DROP INDEX platform.timers_pending_due;
DROP INDEX platform.timers_running_lease;
DROP INDEX platform.timers_tenant_id;
CREATE INDEX timers_done ON platform.timers ("finished_at") WHERE "state" = 'done';
"""


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute(SQL)
