"""Rate-limit counters stop writing WAL.

Every API request counts a hit on its token's window. On a logged table each hit's commit
waits for a WAL flush (1.2–1.8 ms measured, the dearest statement of authentication); an
UNLOGGED table commits without it. A server crash empties the table, which only forgets
the current windows' counts. Failed-login lockouts stay in a logged table."""

from __future__ import annotations

import asyncpg

VERSION = 5
NAME = "unlogged_rate_limits"


async def upgrade(connection: asyncpg.Connection) -> None:
    await connection.execute("ALTER TABLE platform.rate_limits SET UNLOGGED")
