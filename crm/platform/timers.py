"""Timers: tenant work due at a time — the schedule and the transactional outbox.

``schedule()`` adds a row in the caller's transaction, so work exists only if the change
that asked for it commits; nothing is handed to a broker before that. A timer moves
``pending`` → ``queued`` (the scheduler claimed it and sent a ``timers.run`` message) →
``running`` (a worker took it) → ``done``, or back to ``pending`` with back-off after a
transient error, or ``failed`` (a programming error, or attempts used up) until
``crm jobs retry``. Claims use ``FOR UPDATE SKIP LOCKED`` on the partial index of pending
rows, so their cost follows the due timers, never the number of tenants. A lease covers
``queued`` and ``running`` rows: a timer whose message was lost or whose worker died is
claimed again when its lease runs out. Handlers must therefore be idempotent.

A kind may register a **batch handler** (:func:`timer_batch_handler`): due timers of one
tenant and that kind are then claimed together (the claim reads in ``(due_at, tenant_id)``
order), sent as one message and run in one call — a minute in which a hundred of a
company's reminders fall due costs one tenant transaction, not a hundred. A group
succeeds or fails as a whole; its handler must be idempotent per timer, as any handler.

In production the scheduler (``crm scheduler``) claims and the workers (``crm worker``)
run; tests, benches and the in-process :class:`TimerRunner` call :func:`run_due`, which
claims and runs in one go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from crm.platform.auth import load_tenant
from crm.platform.tenancy import TenantRef

log = logging.getLogger(__name__)

# A running timer's lease; renewed in the background while its handler works, so it runs
# out only when the process running it is gone.
LEASE_SECONDS = 60
# A queued timer's lease: how long a message may wait in the broker before the timer is
# believed lost and queued again. Generous — a deep queue is not a lost message.
QUEUED_LEASE_SECONDS = 600
MAX_ATTEMPTS = 5
MAX_BACKOFF_SECONDS = 600
# schedule() wakes the scheduler (LISTEN/NOTIFY) only for timers due about now; later ones
# are found by its poll.
NOTIFY_CHANNEL = "crm_timers"
NOTIFY_WITHIN_SECONDS = 2


class RetryLater(Exception):
    """Raised by a handler for a temporary condition (a mail server answering 4xx, a
    remote API down): the timer is retried with back-off instead of failing at once."""


# Errors that say nothing about the code and pass with time: the database or a remote
# server unreachable, a deadlock or serialization conflict. Everything else is treated as
# a programming error: failed at once, listed by `crm jobs failed`, retried by hand.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RetryLater,
    OSError,  # includes ConnectionError and TimeoutError
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
)


def is_transient(error: BaseException) -> bool:
    """Whether to retry with back-off: a transient error above, or any error that says of
    itself ``permanent = False`` (``crm.platform.mail.MailError`` for a 4xx answer)."""
    return isinstance(error, TRANSIENT_ERRORS) or getattr(error, "permanent", None) is False


@dataclass(frozen=True)
class Timer:
    id: int
    tenant_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    pool: asyncpg.Pool
    due_at: datetime | None = None

    async def renew_lease(self, seconds: int = LEASE_SECONDS) -> None:
        """Keep the timer ours while the work goes on (the runner also does it every
        ``LEASE_SECONDS / 3`` in the background)."""
        await renew_leases(self.pool, [self.id], seconds)


async def renew_leases(pool: asyncpg.Pool, ids: Sequence[int], seconds: int = LEASE_SECONDS) -> None:
    """Extend the leases of running timers ``ids``."""
    await pool.execute(
        "UPDATE platform.timers SET lease_until = now() + make_interval(secs => $2)"
        f" WHERE id = ANY($1::bigint[]) AND state = 'running' AND {NO_FLUSH}",
        list(ids),
        seconds,
    )


Handler = Callable[[TenantRef, Timer], Awaitable[None]]
BatchHandler = Callable[[TenantRef, Sequence[Timer]], Awaitable[None]]
_handlers: dict[str, Handler] = {}
_batch_handlers: dict[str, BatchHandler] = {}
# The most timers of one tenant and kind run by one batch handler call.
MAX_GROUP = 200


def timer_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs timers of ``kind`` (dotted, e.g. ``imports.run``)."""

    def register(function: Handler) -> Handler:
        _check_new_kind(kind)
        _handlers[kind] = function
        return function

    return register


def timer_batch_handler(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register the function that runs due timers of ``kind`` of one tenant together
    (up to ``MAX_GROUP`` at once)."""

    def register(function: BatchHandler) -> BatchHandler:
        _check_new_kind(kind)
        _batch_handlers[kind] = function
        return function

    return register


def _check_new_kind(kind: str) -> None:
    if kind in _handlers or kind in _batch_handlers:
        raise ValueError(f"a handler for {kind!r} exists already")


async def schedule(
    connection: asyncpg.Connection,
    kind: str,
    tenant_id: str,
    payload: dict[str, Any],
    *,
    due_at: datetime | None = None,
) -> int:
    """Add a timer on ``connection`` — inside the caller's transaction, so it exists only
    if that commits (and the scheduler's NOTIFY is delivered only then)."""
    timer_id: int = await connection.fetchval(
        """
        WITH added AS (
            INSERT INTO platform.timers (tenant_id, kind, payload, due_at)
            VALUES ($1, $2, $3::jsonb, coalesce($4, now())) RETURNING id, due_at
        )
        SELECT id, CASE WHEN due_at <= now() + make_interval(secs => $5) THEN pg_notify($6::text, '') END
        FROM added
        """,
        tenant_id,
        kind,
        json.dumps(payload),
        due_at,
        NOTIFY_WITHIN_SECONDS,
        NOTIFY_CHANNEL,
    )
    _wake_runners()
    return timer_id


async def schedule_once(connection: asyncpg.Connection, kind: str, tenant_id: str, *, due_at: datetime) -> bool:
    """Add a timer of ``kind`` for the tenant at ``due_at`` unless one is pending for that
    very moment (the lookup uses the index of pending timers); whether one was added. For
    work a timer finds in the tenant's tables when it runs — a company's reminders of a
    minute share one. Two transactions racing may both add one: the second finds nothing
    left to do."""
    added = await connection.fetchval(
        """
        WITH added AS (
            INSERT INTO platform.timers (tenant_id, kind, due_at)
            SELECT $1::varchar, $2::varchar, $3::timestamptz
            WHERE NOT EXISTS (
                SELECT 1 FROM platform.timers
                WHERE state = 'pending' AND due_at = $3 AND tenant_id = $1 AND kind = $2
            )
            RETURNING due_at
        )
        SELECT 1, CASE WHEN due_at <= now() + make_interval(secs => $4) THEN pg_notify($5::text, '') END
        FROM added
        """,
        tenant_id,
        kind,
        due_at,
        NOTIFY_WITHIN_SECONDS,
        NOTIFY_CHANNEL,
    )
    if added is not None:
        _wake_runners()
    return added is not None


# Appended to the WHERE of the statements that keep the books of timers (claim, take,
# finish, lease, purge): their commits do not wait for the WAL flush (~2.5 ms each on this
# kind of disk, the dearest part of a burst of small timers). A server crash can only
# forget the last fraction of a second of them, and each is safe to forget: a lost claim or
# take comes back when its lease runs out, a lost finish runs the (idempotent) handler
# again, a lost purge purges later. ``set_config(…, true)`` is local to the statement's own
# transaction; work that must not be forgotten (``schedule()`` in the caller's transaction,
# the handlers' own transactions) commits as usual. As an uncorrelated subquery it runs
# once per statement (an InitPlan), not once per row: it costs ~30 µs a call.
NO_FLUSH = "(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL"


# Two locking scans, each in index order and limited: due pending rows (partial index on
# due_at, tenant_id — a tenant's timers due together come out together, for batch handlers)
# and rows whose lease ran out (partial index on lease_until). $3 is "now" — the
# database's unless a test runs "as of" another time.
_CLAIM = f"""
WITH due AS (
    SELECT id FROM platform.timers
    WHERE state = 'pending' AND due_at <= $3
    ORDER BY due_at, tenant_id LIMIT $1
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id FROM platform.timers
    WHERE state IN ('queued', 'running') AND lease_until < $3
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    SELECT id FROM due UNION SELECT id FROM expired LIMIT $1
)
UPDATE platform.timers t SET state = $4::varchar,
       attempts = t.attempts + CASE WHEN $4::varchar = 'running' THEN 1 ELSE 0 END,
       lease_until = now() + make_interval(secs => $2)
FROM claimed WHERE t.id = claimed.id AND {NO_FLUSH}
RETURNING t.id, t.tenant_id, t.kind, t.payload::text, t.attempts, t.due_at
"""


async def claim_due(
    connection: asyncpg.Connection, *, limit: int, now: datetime | None = None, state: str = "queued"
) -> list[asyncpg.Record]:
    """Claim up to ``limit`` due timers (and those whose lease ran out) into ``state``:
    ``queued`` for the scheduler (a worker takes it later), ``running`` to run here."""
    lease = QUEUED_LEASE_SECONDS if state == "queued" else LEASE_SECONDS
    if now is None:
        now = await connection.fetchval("SELECT now()")
    rows: list[asyncpg.Record] = await connection.fetch(_CLAIM, limit, lease, now, state)
    return rows


async def run_due(pool: asyncpg.Pool, *, limit: int = 4, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due timers and run them here, group after group; return how many.

    ``now`` runs "as of" another time (tests with a moved clock: the database's ``now()``
    does not move with time-machine); back-off after a failure counts from it too."""
    async with pool.acquire() as connection:
        rows = await claim_due(connection, limit=limit, now=now, state="running")
    for group in group_claimed(rows):
        await execute([_timer_of(row, pool) for row in group], now=now)
    return len(rows)


def group_claimed(rows: Sequence[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Claimed rows as the groups that run together: a tenant's timers of a kind with a
    batch handler (at most ``MAX_GROUP``), every other timer on its own; in claim order."""
    groups: list[list[asyncpg.Record]] = []
    open_groups: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for row in rows:
        key = (row["tenant_id"], row["kind"])
        group = open_groups.get(key) if row["kind"] in _batch_handlers else None
        if group is None or len(group) >= MAX_GROUP:
            group = []
            groups.append(group)
            open_groups[key] = group
        group.append(row)
    return groups


def _timer_of(row: asyncpg.Record, pool: asyncpg.Pool) -> Timer:
    return Timer(
        row["id"], row["tenant_id"], row["kind"], json.loads(row["payload"]), row["attempts"], pool, row["due_at"]
    )


async def take(pool: asyncpg.Pool, timer_ids: Sequence[int], tenant_id: str) -> list[Timer]:
    """A worker takes queued timers (``queued`` → ``running``, one more attempt each); those
    not queued any more (their message came twice, or they ran already) are left out."""
    rows = await pool.fetch(
        f"""
        UPDATE platform.timers SET state = 'running', attempts = attempts + 1,
               lease_until = now() + make_interval(secs => $3)
        WHERE id = ANY($1::bigint[]) AND tenant_id = $2 AND state = 'queued' AND {NO_FLUSH}
        RETURNING id, tenant_id, kind, payload::text, attempts, due_at
        """,
        list(timer_ids),
        tenant_id,
        LEASE_SECONDS,
    )
    by_id = {row["id"]: row for row in rows}
    return [_timer_of(by_id[timer_id], pool) for timer_id in timer_ids if timer_id in by_id]


async def execute(timers: Sequence[Timer], *, now: datetime | None = None) -> str:
    """Run taken timers — one, or a group of one tenant and kind with a batch handler — and
    record the outcome; return it (done, retry, failed)."""
    import sentry_sdk

    # A Sentry scope of this run's own, so the tenant tags never reach another task's events.
    with sentry_sdk.isolation_scope():
        return await _execute(timers, now)


async def _execute(timers: Sequence[Timer], now: datetime | None) -> str:
    from crm.platform.observability import bind_log_tenant, tag_sentry_scope
    from crm.platform.worker import metrics

    first = timers[0]
    if any(timer.tenant_id != first.tenant_id or timer.kind != first.kind for timer in timers):
        raise ValueError("a group of timers is of one tenant and one kind")
    ids = [timer.id for timer in timers]
    tenant = await load_tenant(tenant_id=first.tenant_id)
    if tenant is not None:
        bind_log_tenant(tenant.slug)
        tag_sentry_scope(tenant.slug, tenant.edition)
    started = time.perf_counter()
    for timer in timers:
        if timer.due_at is not None:
            metrics.timer_started(timer.kind, timer.due_at)
    renewing = asyncio.create_task(_keep_lease(first.pool, ids), name=f"timer-{first.id}-lease")
    try:
        await _call_handler(tenant, timers)
    except Exception as error:
        transient = is_transient(error)
        # The group's most-tried timer decides: a group is retried or failed as a whole.
        final = max(timer.attempts for timer in timers) >= MAX_ATTEMPTS or not transient
        outcome = "failed" if final else "retry"
        what = f"timer {first.id} ({first.kind})" if len(timers) == 1 else f"{len(timers)} timers ({first.kind})"
        if final:
            log.exception("%s failed on attempt %s", what, first.attempts)
        else:
            log.warning("%s attempt %s: %r; retrying", what, first.attempts, error)
        await first.pool.execute(
            "UPDATE platform.timers SET state = $2::varchar, last_error = $3, lease_until = NULL,"
            # back-off: 2, 4, 8, 16 s … by each timer's attempts
            " due_at = coalesce($4, now()) + make_interval(secs => least(power(2, attempts), $5)::int),"
            " finished_at = CASE WHEN $2::varchar = 'failed' THEN now() END"
            f" WHERE id = ANY($1::bigint[]) AND state = 'running' AND {NO_FLUSH}",
            ids,
            "failed" if final else "pending",
            f"{type(error).__name__}: {error}"[:2000],
            now,
            MAX_BACKOFF_SECONDS,
        )
    else:
        outcome = "done"
        await first.pool.execute(
            "UPDATE platform.timers SET state = 'done', lease_until = NULL, finished_at = now()"
            f" WHERE id = ANY($1::bigint[]) AND state = 'running' AND {NO_FLUSH}",
            ids,
        )
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    share = (time.perf_counter() - started) / len(timers)  # each timer's part of the group's time
    for timer in timers:
        metrics.timer_finished(timer.kind, outcome, share)
    return outcome


async def _call_handler(tenant: TenantRef | None, timers: Sequence[Timer]) -> None:
    kind = timers[0].kind
    batch = _batch_handlers.get(kind)
    handler = _handlers.get(kind)
    if batch is None and handler is None:
        raise LookupError(f"no handler for timer kind {kind!r}")
    if tenant is None:  # a deleted tenant's work is dropped
        return
    if batch is not None:
        await batch(tenant, timers)
        return
    assert handler is not None
    for timer in timers:  # groups of a kind without a batch handler hold one timer
        await handler(tenant, timer)


async def _keep_lease(pool: asyncpg.Pool, ids: Sequence[int]) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        try:
            await renew_leases(pool, ids)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("renewing the lease of timers %s… failed; trying again", ids[0])


# --- finished timers ------------------------------------------------------------------------

# Done timers are history (metrics, an engineer's question "did it run?"); kept this long,
# then deleted, so the table stays near the size of the work still to do.
DONE_KEPT = timedelta(days=7)
PURGE_BATCH = 5_000


async def purge_done(pool: asyncpg.Pool, *, kept: timedelta = DONE_KEPT, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` timers done more than ``kept`` ago (oldest first); how many.
    Failed timers stay until retried: ``crm jobs failed`` lists them."""
    status: str = await pool.execute(
        f"""
        DELETE FROM platform.timers WHERE id IN (
            SELECT id FROM platform.timers
            WHERE state = 'done' AND finished_at < now() - $1::interval
            ORDER BY finished_at LIMIT $2
        ) AND {NO_FLUSH}
        """,
        kept,
        limit,
    )
    return int(status.split()[-1])


# --- failed timers (crm jobs failed / retry) -------------------------------------------------


async def failed_timers(pool: asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    """The failed timers, newest first (ids, tenant slug, kind, attempts, error — no payload:
    it may hold personal data)."""
    rows = await pool.fetch(
        """
        SELECT t.id, t.kind, tn.slug AS tenant, t.attempts, t.due_at, t.finished_at, t.last_error
        FROM platform.timers t JOIN platform.tenants tn ON tn.id = t.tenant_id
        WHERE t.state = 'failed' ORDER BY t.finished_at DESC NULLS LAST, t.id DESC LIMIT $1
        """,
        limit,
    )
    return [dict(row) for row in rows]


async def retry_failed(pool: asyncpg.Pool, ids: Sequence[int] | None) -> list[int]:
    """Put failed timers (``ids``, or all when None) back to pending, due now, with fresh
    attempts; return the ids re-queued."""
    rows = await pool.fetch(
        """
        WITH retried AS (
            UPDATE platform.timers SET state = 'pending', attempts = 0, due_at = now(), lease_until = NULL,
                   finished_at = NULL
            WHERE state = 'failed' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))
            RETURNING id
        )
        SELECT id, pg_notify($2, '') FROM retried ORDER BY id
        """,
        list(ids) if ids is not None else None,
        NOTIFY_CHANNEL,
    )
    return [row["id"] for row in rows]


# --- the in-process runner ----------------------------------------------------------------

_runners: set[TimerRunner] = set()
_paused = 0


def _wake_runners() -> None:
    for runner in _runners:
        runner.wake()


@contextlib.asynccontextmanager
async def in_process_runners_paused() -> AsyncIterator[None]:
    """Stop this process's TimerRunners from claiming (tests of the scheduler and workers,
    which share the database with a test app that runs timers in-process)."""
    global _paused
    _paused += 1
    try:
        for runner in list(_runners):
            async with runner.busy:
                pass  # waits for a run in flight
        yield
    finally:
        _paused -= 1
        _wake_runners()


class TimerRunner:
    """Runs due timers in this process's event loop until stopped — the web app in tests and
    in-process benches (``create_app(run_timers=True)``); production uses the workers."""

    def __init__(self, pool: asyncpg.Pool, *, idle_seconds: float = 1.0) -> None:
        self._pool = pool
        self._idle_seconds = idle_seconds
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.busy = asyncio.Lock()

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
            ran = 0
            if not _paused:
                async with self.busy:
                    try:
                        ran = await run_due(self._pool)
                    except (OSError, asyncpg.PostgresError):
                        log.exception("claiming timers failed; retrying")
            if ran:
                continue
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self._idle_seconds)
