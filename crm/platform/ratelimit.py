"""Fixed-window rate limits kept in PostgreSQL, so every web process shares one count.

``platform.rate_limits`` is UNLOGGED: a hit commits without waiting for a WAL flush, and a
crash of the server only forgets the current windows' counts."""

from __future__ import annotations

import math
from typing import NoReturn

import asyncpg

from crm.platform.errors import TooManyRequests

_HIT = """
INSERT INTO platform.rate_limits AS r (key, window_start, hits) VALUES ($1, now(), 1)
ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN r.window_start <= now() - make_interval(secs => $2)
                THEN 1 ELSE r.hits + 1 END,
    window_start = CASE WHEN r.window_start <= now() - make_interval(secs => $2)
                        THEN now() ELSE r.window_start END
RETURNING hits, extract(epoch FROM r.window_start + make_interval(secs => $2) - now()) AS remaining
"""


async def check_rate_limit(pool: asyncpg.Pool, key: str, *, limit: int, window_seconds: int) -> None:
    """Count one hit on ``key``; raise 429 with ``Retry-After`` once ``limit`` is exceeded."""
    row = await pool.fetchrow(_HIT, key, float(window_seconds))
    assert row is not None
    if row["hits"] > limit:
        raise_rate_limited(float(row["remaining"]))


def raise_rate_limited(seconds_left: float) -> NoReturn:
    """429 with ``Retry-After``: the window that is full ends in ``seconds_left``."""
    retry_after = max(1, math.ceil(seconds_left))
    raise TooManyRequests(f"Too many requests; try again in {retry_after} seconds.", retry_after=retry_after)
