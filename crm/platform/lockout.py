"""Brute-force protection on login: lockout with back-off per company + e-mail.

After ``FREE_ATTEMPTS`` consecutive failures the account is locked for one minute,
doubling with every further failure up to an hour; a successful login clears it. The
count is kept for any company + e-mail pair, whether or not such a user exists, so the
lockout itself reveals nothing about which accounts exist.
"""

from __future__ import annotations

import math

import asyncpg

FREE_ATTEMPTS = 5
FIRST_LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600


def account_key(tenant_slug: str, email: str) -> str:
    return f"{tenant_slug.strip().lower()}:{email.strip().lower()}"[:400]


async def seconds_locked(pool: asyncpg.Pool, key: str) -> int:
    """How long the account stays locked (0 when it is not)."""
    remaining = await pool.fetchval(
        "SELECT extract(epoch FROM locked_until - now()) FROM platform.login_failures"
        " WHERE key = $1 AND locked_until > now()",
        key,
    )
    return max(1, math.ceil(float(remaining))) if remaining is not None else 0


async def record_failure(pool: asyncpg.Pool, key: str) -> int:
    """Count a failure; return the seconds of lockout it started (0 for none)."""
    row = await pool.fetchrow(
        """
        INSERT INTO platform.login_failures AS f (key, failures, last_failure_at) VALUES ($1, 1, now())
        ON CONFLICT (key) DO UPDATE SET failures = f.failures + 1, last_failure_at = now()
        RETURNING failures
        """,
        key,
    )
    assert row is not None
    beyond = row["failures"] - FREE_ATTEMPTS
    if beyond < 0:
        return 0
    seconds = min(MAX_LOCK_SECONDS, FIRST_LOCK_SECONDS * 2 ** min(beyond, 12))
    await pool.execute(
        "UPDATE platform.login_failures SET locked_until = now() + make_interval(secs => $2) WHERE key = $1",
        key,
        float(seconds),
    )
    return seconds


async def clear_failures(pool: asyncpg.Pool, key: str) -> None:
    await pool.execute("DELETE FROM platform.login_failures WHERE key = $1", key)
