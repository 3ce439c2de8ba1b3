"""Timers: tenant work that is due at a time, run by the first runner to claim it.

``schedule()`` adds a row in the caller's transaction — work is never queued for a change
that rolls back. Runners claim due rows with ``FOR UPDATE SKIP LOCKED`` and a lease;
a handler renews the lease while it works, and a timer whose runner died is claimed
again when the lease runs out. Handlers must be idempotent: they may run twice.

Today every web process runs a :class:`TimerRunner` in its event loop; the workers issue
moves execution onto Dramatiq workers and keeps this table as the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from crm.platform.auth import load_tenant
from crm.platform.tenancy import TenantRef

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Timer:
    id: int
    tenant_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    pool: asyncpg.Pool

    async def renew_lease(self, seconds: int = LEASE_SECONDS) -> None:
        """Keep the timer ours while the work goes on (call between batches)."""
        await self.pool.execute(
            "UPDATE platform.timers SET lease_until = now() + make_interval(secs => $2) WHERE id = $1",
            self.id,
            seconds,
        )


Handler = Callable[[TenantRef, Timer], Awaitable[None]]
_handlers: dict[str, Handler] = {}


def timer_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs timers of ``kind`` (dotted, e.g. ``imports.run``)."""

    def register(function: Handler) -> Handler:
        if kind in _handlers:
            raise ValueError(f"a handler for {kind!r} exists already")
        _handlers[kind] = function
        return function

    return register


async def schedule(
    connection: asyncpg.Connection,
    kind: str,
    tenant_id: str,
    payload: dict[str, Any],
    *,
    due_at: datetime | None = None,
) -> int:
    """Add a timer on ``connection`` — inside the caller's transaction, so it exists only
    if that commits."""
    timer_id: int = await connection.fetchval(
        "INSERT INTO platform.timers (tenant_id, kind, payload, due_at) VALUES ($1, $2, $3::jsonb, coalesce($4, now()))"
        " RETURNING id",
        tenant_id,
        kind,
        json.dumps(payload),
        due_at,
    )
    _wake_runners()
    return timer_id


_CLAIM = """
UPDATE platform.timers SET state = 'running', attempts = attempts + 1,
       lease_until = now() + make_interval(secs => $2)
WHERE id IN (
    SELECT id FROM platform.timers
    WHERE (state = 'pending' AND due_at <= now()) OR (state = 'running' AND lease_until < now())
    ORDER BY due_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, tenant_id, kind, payload::text, attempts
"""


async def run_due(pool: asyncpg.Pool, *, limit: int = 4) -> int:
    """Claim up to ``limit`` due timers and run them one after another; return how many."""
    rows = await pool.fetch(_CLAIM, limit, LEASE_SECONDS)
    for row in rows:
        timer = Timer(row["id"], row["tenant_id"], row["kind"], json.loads(row["payload"]), row["attempts"], pool)
        await _run(timer)
    return len(rows)


async def _run(timer: Timer) -> None:
    handler = _handlers.get(timer.kind)
    tenant = await load_tenant(tenant_id=timer.tenant_id)
    try:
        if handler is None:
            raise LookupError(f"no handler for timer kind {timer.kind!r}")
        if tenant is not None:  # a deleted tenant's work is dropped
            await handler(tenant, timer)
    except Exception as error:
        log.exception("timer %s (%s) failed on attempt %s", timer.id, timer.kind, timer.attempts)
        final = timer.attempts >= MAX_ATTEMPTS or isinstance(error, LookupError)
        await timer.pool.execute(
            "UPDATE platform.timers SET state = $2, last_error = $3, lease_until = NULL,"
            " due_at = now() + make_interval(secs => $4), finished_at = CASE WHEN $2 = 'failed' THEN now() END"
            " WHERE id = $1",
            timer.id,
            "failed" if final else "pending",
            f"{type(error).__name__}: {error}"[:2000],
            2**timer.attempts,  # back-off: 2, 4, 8, 16 s
        )
        return
    await timer.pool.execute(
        "UPDATE platform.timers SET state = 'done', lease_until = NULL, finished_at = now() WHERE id = $1", timer.id
    )


# --- the in-process runner ----------------------------------------------------------------

_runners: set[TimerRunner] = set()


def _wake_runners() -> None:
    for runner in _runners:
        runner.wake()


class TimerRunner:
    """Runs due timers in this process's event loop until stopped."""

    def __init__(self, pool: asyncpg.Pool, *, idle_seconds: float = 1.0) -> None:
        self._pool = pool
        self._idle_seconds = idle_seconds
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._event.set()

    def start(self) -> None:
        _runners.add(self)
        self._task = asyncio.create_task(self._loop(), name="timer-runner")

    async def stop(self) -> None:
        _runners.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                ran = await run_due(self._pool)
            except (OSError, asyncpg.PostgresError):
                log.exception("claiming timers failed; retrying")
                ran = 0
            if ran:
                continue
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self._idle_seconds)
