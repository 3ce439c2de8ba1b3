"""The import job: works through the file in batches, each batch one transaction.

A batch's clients (created and, with ``on_duplicate=update``, updated), their audit rows
and the job's progress commit together, so a crash loses at most the batch in flight, and
the job — claimed again when its timer's lease runs out — resumes after the last committed
batch. Nothing is imported twice.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crm.platform.auth import Principal, principal_of_user
from crm.platform.tenancy import TenantRef, read_in_tenant, scope_connection, tenant_scope
from crm.platform.timers import Timer, timer_handler
from crm.tenants.audit.services import Actor, AuditRecord, record_audit_many
from crm.tenants.clients.contacts import phone_region
from crm.tenants.configuration.custom_fields import definitions
from crm.tenants.configuration.limits import room_left
from crm.tenants.imports._updates import FileKeys, apply_updates, match_rows
from crm.tenants.imports.csvfile import UnreadableFile, read_rows
from crm.tenants.imports.rows import IMPORTED_FIELDS, ClientRow, RowContext, parse_row
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User

KIND = "imports.run"
DUPLICATE_RULES = ("skip", "update", "create")
BATCH_ROWS = 1000
MAX_KEPT_ERRORS = 1000
# One thread for every import of the process: parsing is CPU work, more threads would only
# contend for the GIL.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-parse")


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    problems: list[dict[str, Any]] | None = None


@timer_handler(KIND)
async def run_import(tenant: TenantRef, timer: Timer) -> None:
    import_id = int(timer.payload["import_id"])
    job = await read_in_tenant(tenant, lambda: _job(import_id))
    if job is None or job["status"] in ("done", "failed", "cancelled"):
        return  # already finished: the timer ran twice
    try:
        header, rows = read_rows(job["content"])
    except UnreadableFile as problem:
        await _finish(tenant, import_id, "failed", [{"row": None, "field": "file", "detail": str(problem)}])
        return
    async with tenant_scope(tenant):
        principal = await principal_of_user(tenant, job["author_id"]) if job["author_id"] else None
        if principal is None:
            context = None
        else:
            context = await _context(principal)
            await scope_connection().execute(
                "UPDATE imports SET status = 'running', total_rows = $2, started_at = coalesce(started_at, now())"
                " WHERE id = $1",
                import_id,
                len(rows),
            )
    if principal is None or context is None:
        detail = "the user who started the import is no longer active"
        await _finish(tenant, import_id, "failed", [{"row": None, "field": "author", "detail": detail}])
        return
    mapping: dict[str, str] = json.loads(job["mapping"]) if isinstance(job["mapping"], str) else job["mapping"]
    columns = [(index, mapping[column]) for index, column in enumerate(header) if column in mapping]
    actor = Actor(
        kind="import", label=f"import {import_id} by {principal.email}", channel="worker", id=principal.user_id
    )
    starts = range(job["processed_rows"], len(rows), BATCH_ROWS)

    def parse(start: int) -> list[ClientRow]:
        return [
            parse_row(start + offset + 2, cells, columns, context)
            for offset, cells in enumerate(rows[start : start + BATCH_ROWS])
        ]

    loop = asyncio.get_running_loop()
    rule = job["on_duplicate"] if job["on_duplicate"] in DUPLICATE_RULES else "skip"
    keys_of_file = FileKeys() if rule == "update" else None
    if keys_of_file is not None:
        # Resumed: which line first had each key is rebuilt from the rows already done.
        for done in range(0, job["processed_rows"], BATCH_ROWS):
            for row in await loop.run_in_executor(_PARSER, parse, done):
                if not row.errors and row.line - 2 < job["processed_rows"]:
                    keys_of_file.claim(row)
    # Batch N+1 is parsed in a thread while batch N is written: parsing (phone numbers
    # mostly) is ~50 µs a row of pure Python, and would otherwise wait for the database and
    # hold the event loop for ~100 ms a batch, when it serves no other request.
    parsing = loop.run_in_executor(_PARSER, parse, starts[0]) if starts else None
    try:
        for start in starts:
            assert parsing is not None
            batch = await parsing
            following = start + BATCH_ROWS
            parsing = loop.run_in_executor(_PARSER, parse, following) if following < len(rows) else None
            async with tenant_scope(tenant):
                connection = scope_connection()
                status = await connection.fetchval("SELECT status FROM imports WHERE id = $1 FOR UPDATE", import_id)
                if status != "running":
                    return  # cancelled meanwhile
                result = await _import_batch(principal, batch, actor, rule=rule, keys_of_file=keys_of_file)
                await connection.execute(
                    """
                    UPDATE imports SET processed_rows = $2, created_rows = created_rows + $3,
                           skipped_rows = skipped_rows + $4, error_rows = error_rows + $5,
                           errors = CASE WHEN jsonb_array_length(errors) >= $7 THEN errors ELSE errors || $6::jsonb END,
                           updated_rows = updated_rows + $8, unchanged_rows = unchanged_rows + $9
                    WHERE id = $1
                    """,
                    import_id,
                    start + len(batch),
                    result.created,
                    result.skipped,
                    result.failed,
                    json.dumps((result.problems or [])[:MAX_KEPT_ERRORS]),
                    MAX_KEPT_ERRORS,
                    result.updated,
                    result.unchanged,
                )
            await timer.renew_lease()
    finally:
        if parsing is not None:
            parsing.cancel()  # stopped early: the thread finishes that batch, nobody waits for it
    await _finish(tenant, import_id, "done", [])


async def _job(import_id: int) -> dict[str, Any] | None:
    row = await scope_connection().fetchrow(
        "SELECT status, content, mapping::text AS mapping, on_duplicate, processed_rows, author_id"
        " FROM imports WHERE id = $1",
        import_id,
    )
    return None if row is None else dict(row)


async def _context(principal: Principal) -> RowContext:
    assignable: dict[str, int] = {}
    if principal.scope("clients", "assign") != "none":
        condition = await users_in_scope(principal, "read")
        users = await User.select(User.id, User.email).where(condition, User.is_active.eq(True))
        assignable = {user["email"].lower(): user["id"] for user in users}
    assignable.setdefault(principal.email.lower(), principal.user_id)
    custom = await definitions("client")
    region = await phone_region() or "RU"
    return RowContext(region=region, importer_id=principal.user_id, custom_fields=custom, assignable=assignable)


async def _import_batch(
    principal: Principal, batch: list[ClientRow], actor: Actor, *, rule: str, keys_of_file: FileKeys | None = None
) -> BatchResult:
    """Create (and with ``rule`` update: change) the clients of ``batch`` in the open scope.
    ``keys_of_file`` (update only) carries the file's keys from batch to batch."""
    result = BatchResult(problems=[])
    assert result.problems is not None
    valid = []
    for row in batch:
        if row.errors:
            result.failed += 1
            result.problems += [{"row": row.line, "field": e.field, "detail": e.detail} for e in row.errors]
        else:
            valid.append(row)
    updates: list[tuple[ClientRow, dict[str, Any]]] = []
    if rule == "update":
        assert keys_of_file is not None
        matches = await match_rows(principal, valid, keys_of_file, DUPLICATES_SQL)
        valid, updates = matches.new, matches.updates
        result.skipped += matches.skipped
        result.failed += matches.failed
        result.problems += matches.problems
    elif rule != "create":
        valid = await _without_duplicates(valid, result)
    room = await room_left(principal, "clients")
    if room is not None and len(valid) > room:
        # Past the edition's client limit: these rows wait for an upgrade (import them again).
        for row in valid[room:]:
            result.failed += 1
            result.problems.append(
                {"row": row.line, "field": "name", "detail": "the edition's client limit is reached"}
            )
        valid = valid[:room]
    if not valid and not updates:
        return result
    records = await _insert_clients(valid, actor) if valid else []
    audit = [
        AuditRecord(
            "client.created",
            "client",
            record["id"],
            {name: (None, record[name]) for name in IMPORTED_FIELDS if record[name] not in (None, [], {}, "")},
        )
        for record in records
    ]
    if updates:
        applied = await apply_updates(updates)
        audit += applied.audit
        result.updated, result.unchanged = applied.updated, applied.unchanged
        result.failed += applied.failed
        result.problems += applied.problems
    # One head lock for the batch's created and updated clients.
    await record_audit_many(actor, audit)
    result.created = len(records)
    return result


async def _insert_clients(rows: list[ClientRow], actor: Actor) -> list[dict[str, Any]]:
    """Insert ``rows`` as new clients in one statement; their records, ids included."""
    connection = scope_connection()
    ids = [
        r["id"]
        for r in await connection.fetch("SELECT nextval('clients_id_seq') AS id FROM generate_series(1, $1)", len(rows))
    ]
    records = [{"id": client_id, **row.values, "author_id": actor.id} for client_id, row in zip(ids, rows, strict=True)]
    columns = ", ".join(f'"{name}"' for name in ("id", *IMPORTED_FIELDS, "author_id"))
    await connection.execute(
        f"INSERT INTO clients ({columns}) SELECT {columns} FROM jsonb_populate_recordset(null::clients, $1::jsonb)",
        json.dumps(records),
    )
    return records


# The clients holding any of a batch's phones ($1), e-mails ($2) or tax ids ($3). One GIN
# probe per key: against a whole 1,000-element array PostgreSQL estimates `&&` so badly
# that it scans every client instead (bench/RESULTS.md, section 6).
DUPLICATES_SQL = (
    "SELECT c.id, c.phones, c.emails, c.tax_id FROM unnest($1::varchar[]) AS k"
    " JOIN clients c ON c.phones @> ARRAY[k]"
    " UNION SELECT c.id, c.phones, c.emails, c.tax_id FROM unnest($2::varchar[]) AS k"
    " JOIN clients c ON c.emails @> ARRAY[k]"
    " UNION SELECT id, phones, emails, tax_id FROM clients WHERE tax_id = ANY($3::varchar[])"
)


async def _without_duplicates(rows: list[ClientRow], result: BatchResult) -> list[ClientRow]:
    """Drop rows whose phone, e-mail or tax id an existing client (or an earlier row of the
    same batch) already has; each is reported with the client it duplicates."""
    assert result.problems is not None
    phones = sorted({phone for row in rows for phone in row.values["phones"]})
    emails = sorted({email for row in rows for email in row.values["emails"]})
    tax_ids = sorted({row.values["tax_id"] for row in rows if row.values["tax_id"]})
    existing = await scope_connection().fetch(DUPLICATES_SQL, phones, emails, tax_ids)
    owner: dict[tuple[str, str], str] = {}
    for client in existing:
        for phone in client["phones"]:
            owner[("phone", phone)] = f"client {client['id']}"
        for email in client["emails"]:
            owner[("email", email)] = f"client {client['id']}"
        if client["tax_id"]:
            owner[("tax_id", client["tax_id"])] = f"client {client['id']}"
    kept = []
    for row in rows:
        keys = [("phone", p) for p in row.values["phones"]] + [("email", e) for e in row.values["emails"]]
        if row.values["tax_id"]:
            keys.append(("tax_id", row.values["tax_id"]))
        match = next((key for key in keys if key in owner), None)
        if match is not None:
            result.skipped += 1
            result.problems.append({"row": row.line, "field": match[0], "detail": f"duplicate of {owner[match]}"})
            continue
        for key in keys:
            owner[key] = f"line {row.line} of this file"
        kept.append(row)
    return kept


async def _finish(tenant: TenantRef, import_id: int, status: str, problems: list[dict[str, Any]]) -> None:
    async with tenant_scope(tenant):
        await scope_connection().execute(
            "UPDATE imports SET status = $2, finished_at = $3, errors = errors || $4::jsonb"
            " WHERE id = $1 AND status NOT IN ('done', 'cancelled')",
            import_id,
            status,
            datetime.now(UTC),
            json.dumps(problems),
        )
