"""Handing one batch of a mailing's letters over: stage, mark, commit-and-release, and what
becomes of a letter a server refused (sending.py explains why the steps are in this order).

A refusal for now — a 4xx answer, or no connection — sends the letter back to ``pending``
with its next attempt after a back-off (``lease_until`` of a pending row is "not before");
after ``MAX_DELIVERY_ATTEMPTS`` it is ``failed``. A 5xx is ``failed`` at once; a 5xx at RCPT
that says the mailbox does not exist also records the address as bounced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from crm.platform.mail import MailError, MailSession, Sender, StagedMessage, build_message, message_id_for
from crm.platform.tenancy import TenantRef, checked_schema_name
from crm.tenants.mailings.rendering import CompiledTemplate, client_context
from crm.tenants.mailings.unsubscribe import unsubscribe_url

log = logging.getLogger(__name__)

# Seconds a letter refused for now waits before its next attempt (the n-th delay after the
# n-th attempt); greylisting servers ask for a few minutes, outages last longer.
RETRY_DELAYS_SECONDS = (60, 300, 900, 3600)
MAX_DELIVERY_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
# SMTP codes at RCPT that say the mailbox does not exist: the address bounced.
BOUNCE_CODES = frozenset({550, 551, 553})


@dataclass
class _Transaction:
    commit_with: str = "COMMIT"


def _begin(schema: str) -> str:
    # BEGIN and the transaction-local search_path in one round trip (as tenant_scope does).
    return f"BEGIN; SELECT set_config('search_path', '\"{checked_schema_name(schema)}\", public', true)"


@contextlib.asynccontextmanager
async def in_tenant_transaction(connection: asyncpg.Connection, schema: str) -> AsyncIterator[_Transaction]:
    """A transaction in the tenant's schema on a connection the mailing run holds (not a
    pooled tenant scope: a run keeps its two connections from start to end). Committed
    with ``commit_with`` (``COMMIT`` unless changed), rolled back on an exception."""
    transaction = _Transaction()
    await connection.execute(_begin(schema))
    try:
        yield transaction
    except BaseException:
        with contextlib.suppress(Exception):
            await connection.execute("ROLLBACK")
        raise
    await connection.execute(transaction.commit_with)


@dataclass
class Letter:
    delivery_id: int
    email: str
    attempts: int  # including this one
    message: Any
    staged: StagedMessage | None = None
    error: MailError | None = None


def build_letter(
    tenant: TenantRef, mailing_id: int, row: asyncpg.Record, template: CompiledTemplate, sender: Sender, company: str
) -> Letter:
    """The letter of one claimed delivery row, rendered for its client."""
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
    return Letter(row["id"], row["email"], row["attempts"], message)


async def _stage(session: MailSession, letter: Letter) -> None:
    try:
        letter.staged = await session.stage(letter.message)
    except MailError as error:
        letter.error = error


async def _release_and_confirm(letters: list[Letter]) -> list[Any]:
    """Write every letter's final "." now, back to back with no await between, then gather
    the servers' answers (None, or the exception of each letter)."""
    for letter in letters:
        letter.staged.release()  # type: ignore[union-attr]
    # The answer-reading tasks start at the top of the next loop step, before any reply can
    # be read off a socket (I/O callbacks of a step run after the tasks already queued).
    answers = (letter.staged.confirm() for letter in letters)  # type: ignore[union-attr]
    return await asyncio.gather(*answers, return_exceptions=True)


async def deliver(
    tenant: TenantRef, connection: asyncpg.Connection, sessions: list[MailSession], letters: list[Letter], claim: str
) -> None:
    """Stage the letters (one per lane), mark them sent, then COMMIT and release together.
    ``connection``: the run's own, outside a transaction."""
    await asyncio.gather(*(_stage(session, letter) for session, letter in zip(sessions, letters, strict=False)))
    staged = [letter for letter in letters if letter.staged is not None]
    # A plain transaction, not tenant_scope: its COMMIT must be written to the socket in
    # the same event-loop step as the final dots (below).
    try:
        await connection.execute(_begin(tenant.schema))
        marked = {
            row["id"]
            for row in await connection.fetch(
                "UPDATE mailing_deliveries SET state = 'sent', sent_at = now(), lease_until = NULL"
                " WHERE id = ANY($1::int[]) AND claim = $2 AND state = 'sending' RETURNING id",
                [letter.delivery_id for letter in staged],
                claim,
            )
        }
        for letter in letters:
            if letter.error is not None:
                await _refused(connection, letter, letter.error, claim, "sending")
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
    # Two tasks queued back to back run in the next loop step with nothing in between: the
    # first writes COMMIT to PostgreSQL, the second every final "." (plain send() calls in
    # one synchronous loop). See sending.py for what a crash around this moment leaves.
    committing = asyncio.ensure_future(connection.execute("COMMIT"))
    releasing = asyncio.ensure_future(_release_and_confirm(released))
    try:
        await committing
    finally:
        results = await releasing
    problems = [(letter, result) for letter, result in zip(released, results, strict=True) if result is not None]
    if problems:
        async with in_tenant_transaction(connection, tenant.schema):
            for letter, result in problems:
                if not isinstance(result, MailError):
                    log.error("delivery %s: unexpected %s", letter.delivery_id, type(result).__name__)
                    result = MailError(f"unexpected {type(result).__name__}", not_delivered=False)
                await _refused(connection, letter, result, claim, "sent", after_data=True)


async def _refused(
    connection: asyncpg.Connection,
    letter: Letter,
    error: MailError,
    claim: str,
    state: str,
    *,
    after_data: bool = False,
) -> None:
    """Record a refusal of the row (in ``state`` under our ``claim``): again later, or failed."""
    if after_data and not error.not_delivered:
        # No answer to the "." that was written: the server may have the letter. Sending it
        # again could make a second one, so it is failed, not retried.
        retry_in = None
    elif error.permanent or letter.attempts >= MAX_DELIVERY_ATTEMPTS:
        retry_in = None
    else:
        retry_in = RETRY_DELAYS_SECONDS[min(letter.attempts, len(RETRY_DELAYS_SECONDS)) - 1]
    if error.permanent and not after_data and error.code in BOUNCE_CODES:
        await connection.execute(
            "INSERT INTO mailing_unsubscribes (email, reason, mailing_id) SELECT $1, 'bounced', mailing_id"
            " FROM mailing_deliveries WHERE id = $2 ON CONFLICT (email) DO NOTHING",
            letter.email,
            letter.delivery_id,
        )
    text = f"after the end of data: {error}" if after_data else str(error)
    await connection.execute(
        "UPDATE mailing_deliveries SET error = $4, claim = NULL, sent_at = NULL,"
        " state = CASE WHEN $5::int IS NULL THEN 'failed' ELSE 'pending' END,"
        " lease_until = now() + make_interval(secs => $5::int)"
        " WHERE id = $1 AND claim = $2 AND state = $3",
        letter.delivery_id,
        claim,
        state,
        text[:300],
        retry_in,
    )
