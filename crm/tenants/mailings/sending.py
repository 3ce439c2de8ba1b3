"""Sending a mailing: one delivery row per recipient, each letter handed over once.

When the mailing starts, its segment is evaluated and a ``mailing_deliveries`` row is
written for every address (unsubscribed and bounced addresses left out), in the same
transaction that moves the mailing to ``sending``. The handler then works in batches of
``lanes`` rows, one SMTP connection per lane:

1. **claim** (committed): ``pending`` → ``sending`` with a random claim token and a lease;
   rows whose lease ran out (their worker died) are claimed again;
2. **stage**: on each lane, MAIL FROM, RCPT TO, DATA and the whole letter — all but the
   final ``.``; the SMTP server delivers nothing yet;
3. **mark**: ``sending`` → ``sent`` for the rows still carrying our claim token (the
   update holds their row locks until it commits);
4. **commit and release** in one event-loop step: the COMMIT is written to PostgreSQL and,
   microseconds later, the final ``.`` on each lane; then the replies are read.

Why this gives one letter per recipient across a crash: a worker killed before step 3
commits leaves rows in ``sending`` and SMTP connections cut mid-DATA, which servers discard
(RFC 5321); the rows are claimed again when their lease runs out and their letters go out
once. A worker killed after step 4 wrote its bytes leaves COMMIT and dots in the kernel's
socket buffers, which the kernel still delivers when the process dies: rows ``sent``,
letters delivered. The residual windows, stated honestly: a kill in the microseconds of
pure Python between writing COMMIT and writing the last dot loses those letters (marked
sent, never released) — never a second letter; a PostgreSQL failure that loses the COMMIT
after the dots went out leaves the rows ``sending``, and they are sent again after the
lease — the one way to a duplicate, and it needs the database, not the worker, to fail.
A server that answers the "." with an error, or a connection lost after it, marks the row
``failed``: it is not resent, because the server may have it.

Addresses refused permanently at RCPT (5xx) are recorded as bounced and left out of later
mailings. Only one mailing per company sends at a time (a session advisory lock), so the
company's rate limit (letters per minute, tenant setting ``mail.rate_per_minute``) holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from crm.platform.auth import principal_of_user
from crm.platform.mail import MailError, MailSession, StagedMessage, build_message, current_mail, message_id_for
from crm.platform.tenancy import TenantRef, scope_connection, set_tenant_search_path, tenant_scope
from crm.platform.timers import Timer, schedule, timer_handler
from crm.tenants.configuration.settings import company_profile
from crm.tenants.mail.sender import tenant_rate_per_minute, tenant_sender
from crm.tenants.mailings.rendering import CompiledTemplate, client_context
from crm.tenants.mailings.schemas import SegmentFilters
from crm.tenants.mailings.segments import count_segment, insert_deliveries_sql, recipients_condition
from crm.tenants.mailings.services import SEND_KIND, letters_this_month, monthly_limit
from crm.tenants.mailings.unsubscribe import unsubscribe_url

log = logging.getLogger(__name__)

LANES = 32  # SMTP connections per sending mailing (measured: bench/mailing.py)
DELIVERY_LEASE_SECONDS = 300
MAX_DELIVERY_ATTEMPTS = 3
BUSY_RETRY_SECONDS = 30
# SMTP codes at RCPT that say the mailbox does not exist: the address bounced.
BOUNCE_CODES = frozenset({550, 551, 553})


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
            return await _send(tenant, mailing_id, pool, lanes=lanes, lease_seconds=lease_seconds)
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


@dataclass
class _Letter:
    delivery_id: int
    email: str
    message: Any
    staged: StagedMessage | None = None
    error: MailError | None = None


_CLAIM = """
WITH claimed AS (
    UPDATE mailing_deliveries SET state = 'sending', claim = $2, attempts = attempts + 1,
           lease_until = now() + make_interval(secs => $3)
    WHERE id IN (
        SELECT id FROM mailing_deliveries
        WHERE mailing_id = $1 AND (state = 'pending' OR (state = 'sending' AND lease_until < now()))
        ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, client_id, email
)
SELECT claimed.id, claimed.email, c.name, c.kind, u.name AS responsible_name, u.email AS responsible_email
FROM claimed LEFT JOIN clients c ON c.id = claimed.client_id LEFT JOIN users u ON u.id = c.responsible_id
ORDER BY claimed.id
"""


async def _send(tenant: TenantRef, mailing_id: int, pool: asyncpg.Pool, *, lanes: int, lease_seconds: int) -> str:
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
    started, handed = time.monotonic(), 0
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(mail.transport.session()) for _ in range(max(1, lanes))]
        while True:
            claim = secrets.token_hex(16)
            async with tenant_scope(tenant):
                connection = scope_connection()
                state = await connection.fetchval("SELECT state FROM mailings WHERE id = $1", mailing_id)
                if state != "sending":
                    return str(state)
                rows = await connection.fetch(_CLAIM, mailing_id, claim, lease_seconds, len(sessions))
                if not rows:
                    left = await connection.fetchval(
                        "SELECT count(*) FROM mailing_deliveries WHERE mailing_id = $1 AND state = 'sending'",
                        mailing_id,
                    )
                    if not left:
                        await connection.execute(
                            "UPDATE mailings SET state = 'sent', finished_at = now() WHERE id = $1", mailing_id
                        )
                        return "sent"
            if not rows:
                # Rows another worker holds (or held, until its lease runs out): wait for them.
                await asyncio.sleep(min(5.0, lease_seconds / 4))
                continue
            letters = [_letter(tenant, mailing_id, row, template, sender, company) for row in rows]
            await _deliver(tenant, pool, sessions, letters, claim)
            handed += len(letters)
            # The company's rate: never ahead of rate_per_minute since the run started.
            ahead = handed * 60.0 / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)


def _letter(
    tenant: TenantRef, mailing_id: int, row: asyncpg.Record, template: CompiledTemplate, sender: Any, company: str
) -> _Letter:
    link = unsubscribe_url(tenant.id, row["id"])
    context = client_context(
        name=row["name"] or row["email"],
        kind=row["kind"] or "person",
        email=row["email"],
        company=company,
        responsible_name=row["responsible_name"],
        responsible_email=row["responsible_email"],
        unsubscribe_url=link,
    )
    rendered = template.render(context)
    message = build_message(
        sender=sender,
        to=row["email"],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        # The same Message-ID on any second attempt of this letter.
        message_id=message_id_for(f"{tenant.id}.mailing.{mailing_id}.{row['id']}", sender),
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
    return _Letter(row["id"], row["email"], message)


async def _stage(session: MailSession, letter: _Letter) -> None:
    try:
        letter.staged = await session.stage(letter.message)
    except MailError as error:
        letter.error = error


async def _deliver(
    tenant: TenantRef, pool: asyncpg.Pool, sessions: list[MailSession], letters: list[_Letter], claim: str
) -> None:
    await asyncio.gather(*(_stage(session, letter) for session, letter in zip(sessions, letters, strict=False)))
    staged = [letter for letter in letters if letter.staged is not None]
    async with pool.acquire() as connection:
        # A plain transaction on a connection of our own, not tenant_scope: its COMMIT must be
        # written to the socket in the same event-loop step as the final dots (below).
        try:
            await connection.execute("BEGIN")
            await set_tenant_search_path(connection, tenant.schema)
            marked = {
                row["id"]
                for row in await connection.fetch(
                    "UPDATE mailing_deliveries SET state = 'sent', sent_at = now(), lease_until = NULL"
                    " WHERE id = ANY($1::int[]) AND claim = $2 AND state = 'sending' RETURNING id",
                    [letter.delivery_id for letter in staged],
                    claim,
                )
            }
            await _record_refusals(connection, [letter for letter in letters if letter.error is not None], claim)
        except BaseException:
            for letter in staged:
                await letter.staged.abort()  # type: ignore[union-attr]
            with contextlib.suppress(Exception):
                await connection.execute("ROLLBACK")
            raise
        for letter in staged:
            if letter.delivery_id not in marked:
                await letter.staged.abort()  # type: ignore[union-attr] # another worker holds the row now
        released = [letter for letter in staged if letter.delivery_id in marked]
        # The rows stay locked by our UPDATE until COMMIT, so nobody can claim them meanwhile.
        # Tasks start in creation order within one loop step, with no I/O wait in between:
        # COMMIT is written to PostgreSQL, then every final "." to its SMTP server, microseconds
        # apart. A worker killed before the COMMIT is written loses nothing (servers discard the
        # unfinished DATA); killed after the dots are written, both still reach their servers
        # from the kernel's buffers. Only a kill in the microseconds between the two writes
        # loses letters (marked sent, never released); only a PostgreSQL failure at this COMMIT
        # can duplicate them (released, mark lost, sent again after the lease).
        committing = asyncio.ensure_future(connection.execute("COMMIT"))
        finishing = [asyncio.ensure_future(letter.staged.finish()) for letter in released]  # type: ignore[union-attr]
        try:
            await committing
        finally:
            results = await asyncio.gather(*finishing, return_exceptions=True)
    failed = [(letter, result) for letter, result in zip(released, results, strict=True) if result is not None]
    if failed:
        async with tenant_scope(tenant):
            for letter, result in failed:
                if not isinstance(result, MailError):
                    log.error("delivery %s: unexpected %s", letter.delivery_id, type(result).__name__)
                await scope_connection().execute(
                    "UPDATE mailing_deliveries SET state = 'failed', error = $2 WHERE id = $1",
                    letter.delivery_id,
                    f"after the end of data: {result}"[:300],
                )


async def _record_refusals(connection: asyncpg.Connection, refused: list[_Letter], claim: str) -> None:
    for letter in refused:
        assert letter.error is not None
        if letter.error.permanent:
            state = "failed"
            if letter.error.code in BOUNCE_CODES:
                await connection.execute(
                    "INSERT INTO mailing_unsubscribes (email, reason, mailing_id) SELECT $1, 'bounced', mailing_id"
                    " FROM mailing_deliveries WHERE id = $2 ON CONFLICT (email) DO NOTHING",
                    letter.email,
                    letter.delivery_id,
                )
        else:
            state = "retry"
        await connection.execute(
            "UPDATE mailing_deliveries SET state = CASE WHEN $3 = 'retry' AND attempts < $4 THEN 'pending'"
            " ELSE 'failed' END, error = $5, claim = NULL, lease_until = NULL"
            " WHERE id = $1 AND claim = $2 AND state = 'sending'",
            letter.delivery_id,
            claim,
            state,
            MAX_DELIVERY_ATTEMPTS,
            str(letter.error)[:300],
        )
