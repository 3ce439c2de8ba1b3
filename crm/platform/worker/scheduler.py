"""``crm scheduler``: turns due timers into ``timers.run`` messages.

One scheduler is active at a time: it holds a session advisory lock on a connection of its
own (not from the pool, whose connections are released without a reset and must carry no
session state — docs/architecture.md). A second scheduler waits for the lock and takes over
when the first one's connection goes away (its process died). The active one claims due
timers with ``FOR UPDATE SKIP LOCKED`` and commits the claim, then sends one message per
timer (per group, for kinds with a batch handler); a worker takes only timers still
``queued``, so a message delivered twice does nothing the second time. It wakes on
``schedule()``'s NOTIFY (delivered at commit) and polls every second for timers that came
due meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg

from crm.platform.timers import NOTIFY_CHANNEL, PURGE_BATCH, claim_due, group_claimed, purge_done

log = logging.getLogger(__name__)

# "rcm_schd" as a 64-bit advisory lock key.
LOCK_KEY = 0x72636D5F73636864
# The active scheduler deletes long-finished timers (and abandoned bot conversations) this
# often (a batch at a time, between claims, so a large backlog of history never delays due
# work by more than one batch).
PURGE_EVERY_SECONDS = 60.0

# (tenant id, timer ids): one message per group of timers that run together.
Enqueue = Callable[[Sequence[tuple[str, list[int]]]], None]


class Scheduler:
    """Claims due timers and hands ``(tenant_id, timer_ids)`` groups to ``enqueue`` (a
    blocking function, run in a thread: the brokers' clients are synchronous)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        lock_url: str,
        enqueue: Enqueue,
        *,
        batch: int = 500,
        poll_seconds: float = 1.0,
        lock_poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._lock_url = lock_url
        self._enqueue = enqueue
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lock_poll_seconds = lock_poll_seconds
        self.active = False
        self.became_active = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Wait for the lock, then schedule until ``stop`` is set; survive a lost database."""
        while not stop.is_set():
            try:
                await self._lead(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("scheduler: %r; reconnecting", error)
                await _wait(stop, self.lock_poll_seconds)

    async def _lead(self, stop: asyncio.Event) -> None:
        connection: asyncpg.Connection = await asyncpg.connect(
            self._lock_url, server_settings={"application_name": "relay-crm-scheduler"}
        )
        stopping = False  # closing the connection ourselves is no news
        try:
            backend = connection.get_server_pid()
            while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                if await _wait(stop, self.lock_poll_seconds):
                    return
            log.info("scheduler active")
            # If the server drops this connection, say which backend it was: its log tells why.
            connection.add_termination_listener(
                lambda closed: (
                    None
                    if stopping
                    else log.warning("the scheduler's lock connection (backend %s) was closed", backend)
                )
            )
            self.active = True
            self.became_active.set()
            wake = asyncio.Event()

            def notified(*_: object) -> None:
                wake.set()

            await connection.add_listener(NOTIFY_CHANNEL, notified)
            next_purge = time.monotonic()
            while not stop.is_set():
                if connection.is_closed():
                    # The lock went with the connection; another scheduler may hold it now.
                    raise ConnectionError("the scheduler's lock connection was lost")
                wake.clear()
                if await self.tick() >= self.batch:
                    continue
                if time.monotonic() >= next_purge:
                    if await self.housekeeping() < PURGE_BATCH:
                        next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                    continue
                await _wait(stop, self.poll_seconds, wake)
        finally:
            stopping = True
            self.active = False
            self.became_active.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def housekeeping(self) -> int:
        """Delete a batch of history: finished timers, abandoned bot conversations. The
        largest number deleted: at PURGE_BATCH, there may be more."""
        from crm.bot.storage import purge_abandoned_conversations

        return max(await purge_done(self._pool), await purge_abandoned_conversations(self._pool))

    async def tick(self, *, now: datetime | None = None) -> int:
        """Claim one batch of due timers, then send their messages; return how many.

        The claim commits before the first message goes out: a worker's ``take`` must see
        the timers ``queued`` (an UPDATE does not wait for a row whose committed version
        does not match it, so a message that overtook an uncommitted claim would find the
        timer still ``pending`` and be dropped). If sending fails, the timers go back to
        ``pending``; if this process dies in between, their queued lease brings them back."""
        async with self._pool.acquire() as connection:
            rows = await claim_due(connection, limit=self.batch, now=now, state="queued")
        if not rows:
            return 0
        groups = [(group[0]["tenant_id"], [row["id"] for row in group]) for group in group_claimed(rows)]
        try:
            await asyncio.to_thread(self._enqueue, groups)
        except BaseException:
            await self._pool.execute(
                "UPDATE platform.timers SET state = 'pending', lease_until = NULL"
                " WHERE id = ANY($1::bigint[]) AND state = 'queued'",
                [row["id"] for row in rows],
            )
            raise
        return len(rows)


async def _wait(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> bool:
    """Sleep up to ``seconds``, less if ``stop`` (or ``wake``) is set; return whether stopped."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()
