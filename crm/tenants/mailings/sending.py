"""Sending a mailing: one delivery row per recipient, each letter handed over once.

When the mailing starts, its segment is evaluated and a ``mailing_deliveries`` row is
written for every address (unsubscribed and bounced addresses left out), in the same
transaction that moves the mailing to ``sending``. The handler then works in batches of
``lanes`` rows, one SMTP connection per lane (delivery.py):

1. **claim** (committed): ``pending`` → ``sending`` with a random claim token and a lease;
2. **stage**: on each lane, MAIL FROM, RCPT TO, DATA and the whole letter — all but the
   final ``.``; the SMTP server delivers nothing yet;
3. **mark**: ``sending`` → ``sent`` for the rows still carrying our claim token (the
   update holds their row locks until it commits);
4. **commit and release**: the COMMIT is written to PostgreSQL and, in the next task of the
   same event-loop step, every lane's final ``.`` with plain ``send()`` calls, back to back;
   then the replies are read.

What a worker killed (SIGKILL, OOM, a lost node) at any moment leaves behind:

- before the COMMIT of step 4 is written: rows ``sending``, SMTP connections cut mid-DATA,
  which servers discard (RFC 5321 §4.1.1.4). When the lease runs out the rows are claimed
  again and their letters go out once. Nothing lost, nothing twice.
- after the last ``.`` is written: COMMIT and dots are in the kernel's socket buffers, which
  the kernel still sends when the process dies: rows ``sent``, letters delivered.
- in between — the send() calls of one batch: tens of microseconds, a few hundred on a
  loaded machine — the rows are ``sent`` and the letters whose ``.`` was not yet written
  are never delivered. This is the one residual window, and it is chosen to lose, never to
  duplicate: writing the dots first would turn the same window into letters delivered and
  then sent again. Two independent connections (PostgreSQL and SMTP) cannot change state
  atomically; no ordering or state closes the window, it can only be kept short and
  one-sided. A ``sending`` state recorded before the ``.`` and a ``sent`` after the reply
  would not help: a row still ``sending`` after a crash could then be delivered or not, and
  recovery would have to guess — resending duplicates, failing loses — for kills anywhere
  in the whole reply wait, milliseconds, instead of microseconds. (When each lane's ``.``
  was written by a task of its own, the window was a millisecond under load, and a test
  run lost the last 4 letters of a batch that way.)
- a PostgreSQL failure that loses the COMMIT after the dots went out leaves the rows
  ``sending`` and they are sent again after the lease: the one way to a duplicate, and it
  needs the database, not the worker, to fail at that instant.

A server that answers the "." with a 4xx or 5xx does not have the letter: a 4xx is tried
again later, a 5xx is ``failed``. A connection lost after the "." was written marks the
row ``failed``: it is not resent, because the server may have it. Refusals before the "."
(at MAIL, RCPT, DATA, or no connection) are tried again after a back-off when they are
for now (4xx), up to ``MAX_DELIVERY_ATTEMPTS``; a permanent refusal at RCPT (550, 551,
553) records the address as bounced and leaves it out of later mailings. While letters
wait for their next attempt and nothing else is left, the run ends and a timer resumes the
mailing when the first of them is due.

Each claim takes the next pending rows after the last one this run claimed (from the
start again when it reaches the end, for letters refused earlier), so its cost is its
batch, not the rows sent before it. Rows left ``sending`` by a dead worker are claimed
again only when no pending row is left.

Only one mailing per company sends at a time (a session advisory lock), so the company's
rate limit (letters per minute, tenant setting ``mail.rate_per_minute``) holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from crm.platform.auth import principal_of_user
from crm.platform.mail import current_mail
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import Timer, schedule, timer_handler
from crm.tenants.configuration.settings import company_profile
from crm.tenants.mail.sender import tenant_rate_per_minute, tenant_sender
from crm.tenants.mailings.delivery import build_letter, deliver, in_tenant_transaction
from crm.tenants.mailings.quota import letters_this_month, monthly_limit
from crm.tenants.mailings.rendering import CompiledTemplate
from crm.tenants.mailings.schemas import SegmentFilters
from crm.tenants.mailings.segments import count_segment, insert_deliveries_sql, recipients_condition
from crm.tenants.mailings.services import SEND_KIND

LANES = 32  # SMTP connections per sending mailing (measured: bench/mailing.py)
DELIVERY_LEASE_SECONDS = 300
BUSY_RETRY_SECONDS = 30


@timer_handler(SEND_KIND)
async def send_mailing(tenant: TenantRef, timer: Timer) -> None:
    await run_mailing(tenant, int(timer.payload["mailing_id"]), timer.pool)


async def run_mailing(
    tenant: TenantRef,
    mailing_id: int,
    pool: asyncpg.Pool,
    *,
    lanes: int = LANES,
    lease_seconds: int = DELIVERY_LEASE_SECONDS,
) -> str:
    """Start the mailing if it is due, then send until nothing is left; returns its state.
    Safe to run twice, side by side or after a crash."""
    key = f"mailings:{tenant.id}"
    async with pool.acquire() as lock:
        if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key):
            # Another mailing of the company is sending (or this one, in another worker).
            async with tenant_scope(tenant):
                due = datetime.now(UTC) + timedelta(seconds=BUSY_RETRY_SECONDS)
                await schedule(scope_connection(), SEND_KIND, tenant.id, {"mailing_id": mailing_id}, due_at=due)
            return "waiting"
        try:
            state = await _start(tenant, mailing_id)
            if state != "sending":
                return state
            return await _send(tenant, mailing_id, lock, pool, lanes=lanes, lease_seconds=lease_seconds)
        finally:
            await lock.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


async def _start(tenant: TenantRef, mailing_id: int) -> str:
    """``scheduled`` → ``sending`` with its deliveries, in one transaction; the state after."""
    async with tenant_scope(tenant):
        connection = scope_connection()
        mailing = await connection.fetchrow(
            "SELECT m.state, m.author_id, s.filters::text AS filters FROM mailings m"
            " JOIN mailing_segments s ON s.id = m.segment_id WHERE m.id = $1 FOR UPDATE OF m",
            mailing_id,
        )
        if mailing is None:
            return "gone"
        if mailing["state"] != "scheduled":
            return str(mailing["state"])
        principal = await principal_of_user(tenant, mailing["author_id"]) if mailing["author_id"] else None
        if principal is None:
            return await _fail(connection, mailing_id, "the author of the mailing is no longer an active user")
        filters = msgspec.json.decode(mailing["filters"], type=SegmentFilters)
        _, recipients = await count_segment(principal, filters)
        limit = monthly_limit(tenant.edition)
        if limit is not None and await letters_this_month() + recipients > limit:
            return await _fail(connection, mailing_id, f"the edition's limit of {limit} letters a month is reached")
        sql, args = insert_deliveries_sql(mailing_id, await recipients_condition(principal, filters))
        status = await connection.execute(sql, *args)
        total = int(status.rsplit(" ", 1)[-1])
        await connection.execute(
            "UPDATE mailings SET state = 'sending', started_at = now(), total = $2 WHERE id = $1", mailing_id, total
        )
        return "sending"


async def _fail(connection: asyncpg.Connection, mailing_id: int, reason: str) -> str:
    await connection.execute(
        "UPDATE mailings SET state = 'failed', error = $2, finished_at = now() WHERE id = $1", mailing_id, reason
    )
    return "failed"


_CLAIM = """
WITH claimed AS (
    UPDATE mailing_deliveries SET state = 'sending', claim = $2, attempts = attempts + 1,
           lease_until = now() + make_interval(secs => $3)
    WHERE id IN (
        SELECT id FROM mailing_deliveries WHERE mailing_id = $1 AND {which}
        AND EXISTS (SELECT 1 FROM mailings WHERE id = $1 AND state = 'sending')
        ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, client_id, email, attempts
)
SELECT claimed.id, claimed.email, claimed.attempts, c.name, c.kind,
       u.name AS responsible_name, u.email AS responsible_email
FROM claimed LEFT JOIN clients c ON c.id = claimed.client_id LEFT JOIN users u ON u.id = c.responsible_id
ORDER BY claimed.id
"""
# The next pending rows after the last claimed one (a pending row's lease_until is the
# earliest time of its next attempt). "After" keeps each claim's cost to its batch: from
# the start of the mailing, an index scan in id order would step over every row already
# sent — and their dead versions — on every claim, quadratic in the recipients.
_CLAIM_DUE = _CLAIM.format(which="state = 'pending' AND (lease_until IS NULL OR lease_until <= now()) AND id > $5")
# Rows a dead worker held: its lease ran out before it marked them.
_CLAIM_EXPIRED = _CLAIM.format(which="state = 'sending' AND lease_until < now()")
# A claim is not worth a disk flush: if a database crash loses it, its rows are pending again
# and none of their letters was released (the mark that releases them is a durable commit,
# and it flushes the claim's record with its own).
_COMMIT_CLAIM = "SELECT set_config('synchronous_commit', 'off', true); COMMIT"


async def _send(
    tenant: TenantRef,
    mailing_id: int,
    claims: asyncpg.Connection,
    pool: asyncpg.Pool,
    *,
    lanes: int,
    lease_seconds: int,
) -> str:
    """Claim, render and deliver batches until nothing is left. ``claims`` is a connection of
    this run's own (the one holding its advisory lock)."""
    mail = current_mail()
    async with tenant_scope(tenant):
        connection = scope_connection()
        template_row = await connection.fetchrow(
            "SELECT t.subject, t.text, t.html FROM mailings m JOIN mailing_templates t ON t.id = m.template_id"
            " WHERE m.id = $1",
            mailing_id,
        )
        sender = await tenant_sender()
        rate = await tenant_rate_per_minute()
        company = (await company_profile()).get("name") or tenant.slug
    assert template_row is not None
    template = CompiledTemplate(template_row["subject"], template_row["text"], template_row["html"])
    started, handed, after_id = time.monotonic(), 0, 0
    async with contextlib.AsyncExitStack() as stack:
        marks = await stack.enter_async_context(pool.acquire())
        sessions = [await stack.enter_async_context(mail.transport.session()) for _ in range(max(1, lanes))]
        while True:
            claim = secrets.token_hex(16)
            async with in_tenant_transaction(claims, tenant.schema) as transaction:
                rows = await claims.fetch(_CLAIM_DUE, mailing_id, claim, lease_seconds, len(sessions), after_id)
                if not rows and after_id:
                    # Past the end: rows before it may be due again (refused for now earlier).
                    after_id = 0
                    rows = await claims.fetch(_CLAIM_DUE, mailing_id, claim, lease_seconds, len(sessions), 0)
                if not rows:
                    rows = await claims.fetch(_CLAIM_EXPIRED, mailing_id, claim, lease_seconds, len(sessions))
                if rows:
                    transaction.commit_with = _COMMIT_CLAIM
                else:
                    outcome = await _nothing_to_claim(claims, tenant, mailing_id)
                    if outcome is not None:
                        return outcome
            if not rows:
                # Rows another worker holds (or held, until its lease runs out): wait for them.
                await asyncio.sleep(min(5.0, lease_seconds / 4))
                continue
            after_id = max(after_id, max(row["id"] for row in rows))
            letters = [build_letter(tenant, mailing_id, row, template, sender, company) for row in rows]
            await deliver(tenant, marks, sessions, letters, claim)
            handed += len(letters)
            # The company's rate: never ahead of rate_per_minute since the run started.
            ahead = handed * 60.0 / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def _nothing_to_claim(connection: asyncpg.Connection, tenant: TenantRef, mailing_id: int) -> str | None:
    """Nothing claimable now: the mailing's state when it is no longer sending (cancelled);
    ``sent`` when nothing is left, ``waiting`` (with a timer) when only letters waiting for
    their next attempt are; None when another worker holds rows."""
    state = await connection.fetchval("SELECT state FROM mailings WHERE id = $1", mailing_id)
    if state != "sending":
        return str(state)
    left = await connection.fetchrow(
        "SELECT count(*) FILTER (WHERE state = 'sending' OR lease_until IS NULL OR lease_until <= now()) AS held,"
        " min(lease_until) FILTER (WHERE state = 'pending' AND lease_until > now()) AS next_attempt"
        " FROM mailing_deliveries WHERE mailing_id = $1 AND state IN ('pending', 'sending')",
        mailing_id,
    )
    if left["held"]:
        return None
    if left["next_attempt"] is not None:
        await schedule(connection, SEND_KIND, tenant.id, {"mailing_id": mailing_id}, due_at=left["next_attempt"])
        return "waiting"
    await connection.execute("UPDATE mailings SET state = 'sent', finished_at = now() WHERE id = $1", mailing_id)
    return "sent"
