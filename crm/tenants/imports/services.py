"""Imports as actions, shared by the API and the console's import wizard: preview a file,
start an import, follow its progress, cancel it.

The API uploads the file twice (preview, then start). The console's wizard uploads it once:
the file is kept as a *draft* job (status ``draft``, no timer, seen only by its author) while
the user checks the column mapping, and starting turns the draft into a queued job. Drafts
are never listed, and drafts older than a day are dropped when a new one is saved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import ListSpec, page_of, page_query
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.platform.timers import schedule
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import setting
from crm.tenants.imports.csvfile import CLIENT_FIELDS, UnreadableFile, detect_mapping, read_rows
from crm.tenants.imports.runner import DUPLICATE_RULES, KIND
from crm.tenants.imports.schemas import ImportPage, ImportPreview, ImportRead
from crm.tenants.imports.tables import ImportJob
from crm.tenants.users.scopes import records_in_scope

PREVIEW_ROWS = 5
DRAFT = "draft"
DRAFTS_KEPT = timedelta(days=1)
READ_COLUMNS = (
    ImportJob.id,
    ImportJob.status,
    ImportJob.filename,
    ImportJob.mapping,
    ImportJob.on_duplicate,
    ImportJob.total_rows,
    ImportJob.processed_rows,
    ImportJob.created_rows,
    ImportJob.updated_rows,
    ImportJob.unchanged_rows,
    ImportJob.skipped_rows,
    ImportJob.error_rows,
    ImportJob.errors,
    ImportJob.author_id,
    ImportJob.created_at,
    ImportJob.started_at,
    ImportJob.finished_at,
)
IMPORT_LIST = ListSpec(sortable={"id": ImportJob.id, "created_at": ImportJob.created_at}, default_sort="-id")
FINISHED = ("done", "failed", "cancelled")


def import_read(row: dict[str, Any]) -> ImportRead:
    total = row["total_rows"]
    percent = 100 if row["status"] == "done" else (row["processed_rows"] * 100 // total if total else 0)
    return msgspec.convert({**row, "percent": percent}, ImportRead)


async def custom_client_fields() -> dict[str, dict[str, str]]:
    """The company's custom fields of clients: key → names (inside the tenant scope)."""
    rows: list[dict[str, Any]] = await setting("custom_fields", [])
    return {row["key"]: row.get("names") or {} for row in rows if row.get("entity") == "client"}


def importable_fields(custom: dict[str, dict[str, str]]) -> list[str]:
    return [*CLIENT_FIELDS, *(f"custom.{key}" for key in custom)]


def check_rule(on_duplicate: str) -> None:
    if on_duplicate not in DUPLICATE_RULES:
        raise InvalidInput(
            "Unknown duplicate rule.",
            errors=[FieldError("on_duplicate", f"must be one of {', '.join(DUPLICATE_RULES)}")],
        )


def check_may_import(principal: Principal, on_duplicate: str) -> None:
    """An import creates clients (and with ``update`` changes them): the role must allow it."""
    if principal.scope("clients", "create") == "none":
        raise InvalidInput(
            "Your role may not create clients.", errors=[FieldError("file", "you may not create clients")]
        )
    check_rule(on_duplicate)
    if on_duplicate == "update" and principal.scope("clients", "update") == "none":
        raise InvalidInput(
            "Your role may not update clients.",
            errors=[FieldError("on_duplicate", "you may not update clients: choose skip or create")],
        )


def parse_file(content: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and data rows of an uploaded CSV file; 422 on ``file`` when unreadable."""
    try:
        return read_rows(content)
    except UnreadableFile as problem:
        raise InvalidInput(f"The file cannot be read: {problem}.", errors=[FieldError("file", str(problem))]) from None


def mapping_of(
    given: str | dict[str, Any] | None, header: list[str], custom: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Column → field: detected from the headers when ``given`` is None, else ``given`` (a
    JSON object, or its text) checked against the file's columns and the importable fields."""
    if given is None:
        return detect_mapping(header, custom)
    mapping: Any = given
    if isinstance(given, str):
        try:
            mapping = json.loads(given)
        except json.JSONDecodeError:
            raise InvalidInput(
                "The mapping is not JSON.", errors=[FieldError("mapping", "must be a JSON object")]
            ) from None
    allowed = set(importable_fields(custom))
    errors = [
        FieldError(f"mapping.{column}", "no such column in the file" if column not in header else "unknown field")
        for column, field in (mapping.items() if isinstance(mapping, dict) else [])
        if column not in header or not isinstance(field, str) or field not in allowed
    ]
    if not isinstance(mapping, dict) or errors:
        raise InvalidInput(
            "The mapping does not fit the file.", errors=errors or [FieldError("mapping", "must be an object")]
        )
    return {column: field for column, field in mapping.items() if field}


def _require_name(mapping: dict[str, str]) -> None:
    if "name" not in mapping.values():
        raise InvalidInput("No column holds the client's name.", errors=[FieldError("mapping", "map a column to name")])


async def preview_file(
    principal: Principal, content: bytes, *, mapping: str | None, on_duplicate: str
) -> ImportPreview:
    """A file's columns, how they would be mapped, and its first rows. Nothing is read
    against the clients (no counts of what would be created or updated)."""
    check_rule(on_duplicate)
    header, rows = parse_file(content)
    custom = await read_in_tenant(principal.tenant, custom_client_fields)
    return ImportPreview(
        columns=header,
        mapping=mapping_of(mapping, header, custom),
        fields=importable_fields(custom),
        rows=rows[:PREVIEW_ROWS],
        total_rows=len(rows),
    )


async def _queue(
    principal: Principal, import_id: int, filename: str, rows: int, mapping: dict[str, str], origin: Origin
) -> ImportRead:
    """Audit the start and schedule the job (inside the open scope); the job as read now."""
    await record_audit(
        origin.user(principal),
        "import.started",
        entity="import",
        entity_id=import_id,
        changes={"filename": (None, filename), "rows": (None, rows), "mapping": (None, mapping)},
    )
    await schedule(scope_connection(), KIND, principal.tenant.id, {"import_id": import_id})
    row = await ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id).output(load_json=True).first()
    assert row is not None
    return import_read(row)


async def start_import(
    principal: Principal,
    *,
    filename: str | None,
    content: bytes,
    on_duplicate: str,
    mapping: str | dict[str, Any] | None,
    origin: Origin,
) -> ImportRead:
    """Start importing an uploaded file in the background; the queued job."""
    check_may_import(principal, on_duplicate)
    header, rows = parse_file(content)
    async with tenant_scope(principal.tenant):
        chosen = mapping_of(mapping, header, await custom_client_fields())
        _require_name(chosen)
        created = await ImportJob.insert(
            ImportJob(
                filename=(filename or "import.csv")[:255],
                content=content,
                mapping=chosen,
                on_duplicate=on_duplicate,
                total_rows=len(rows),
                author_id=principal.user_id,
            )
        ).returning(ImportJob.id)
        return await _queue(principal, int(created[0]["id"]), filename or "", len(rows), chosen, origin)


async def save_draft(
    principal: Principal, *, filename: str | None, content: bytes, on_duplicate: str
) -> tuple[int, ImportPreview]:
    """Keep an uploaded file as a draft import of its author (the wizard's first step); its
    id and preview. Refused like a start would be: a role that may not import cannot upload."""
    check_may_import(principal, on_duplicate)
    header, rows = parse_file(content)
    async with tenant_scope(principal.tenant):
        custom = await custom_client_fields()
        detected = detect_mapping(header, custom)
        # Abandoned wizards: their files are not kept past a day.
        await ImportJob.delete().where(
            ImportJob.status == DRAFT, ImportJob.created_at < datetime.now(UTC) - DRAFTS_KEPT
        )
        created = await ImportJob.insert(
            ImportJob(
                filename=(filename or "import.csv")[:255],
                content=content,
                mapping=detected,
                on_duplicate=on_duplicate,
                total_rows=len(rows),
                author_id=principal.user_id,
                status=DRAFT,
            )
        ).returning(ImportJob.id)
    preview = ImportPreview(
        columns=header,
        mapping=detected,
        fields=importable_fields(custom),
        rows=rows[:PREVIEW_ROWS],
        total_rows=len(rows),
    )
    return int(created[0]["id"]), preview


async def _draft(principal: Principal, draft_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = ImportJob.select(
        ImportJob.id, ImportJob.filename, ImportJob.content, ImportJob.mapping, ImportJob.on_duplicate
    ).where(ImportJob.id == draft_id, ImportJob.status == DRAFT, ImportJob.author_id == principal.user_id)
    if lock:
        query = query.lock_rows()
    row: dict[str, Any] | None = await query.output(load_json=True).first()
    if row is None:
        raise NotFound(f"There is no draft import {draft_id}.")
    return row


async def draft_preview(principal: Principal, draft_id: int) -> tuple[dict[str, Any], ImportPreview]:
    """A draft of the caller's (filename, mapping, on_duplicate) and its file's preview."""

    async def work() -> tuple[dict[str, Any], ImportPreview]:
        row = await _draft(principal, draft_id)
        custom = await custom_client_fields()
        header, rows = parse_file(row.pop("content"))
        return row, ImportPreview(
            columns=header,
            mapping=row["mapping"],
            fields=importable_fields(custom),
            rows=rows[:PREVIEW_ROWS],
            total_rows=len(rows),
        )

    return await read_in_tenant(principal.tenant, work)


async def start_draft(
    principal: Principal, draft_id: int, *, mapping: dict[str, str], on_duplicate: str, origin: Origin
) -> ImportRead:
    """Start the caller's draft import with the mapping they chose; the queued job."""
    check_may_import(principal, on_duplicate)
    async with tenant_scope(principal.tenant):
        row = await _draft(principal, draft_id, lock=True)
        header, rows = parse_file(row["content"])
        chosen = mapping_of(mapping, header, await custom_client_fields())
        _require_name(chosen)
        await ImportJob.update(
            {
                ImportJob.status: "queued",
                ImportJob.mapping: chosen,
                ImportJob.on_duplicate: on_duplicate,
                ImportJob.total_rows: len(rows),
                ImportJob.created_at: datetime.now(UTC),
            }
        ).where(ImportJob.id == draft_id)
        return await _queue(principal, draft_id, row["filename"], len(rows), chosen, origin)


async def _visible(principal: Principal) -> Any:
    return await records_in_scope(principal, "imports", "read", ImportJob.author_id) & (ImportJob.status != DRAFT)


async def list_imports(principal: Principal, *, cursor: str | None, limit: int) -> ImportPage:
    """Imports the caller may read, newest first."""
    ordering = IMPORT_LIST.ordering(None)

    async def page() -> list[dict[str, Any]]:
        query = ImportJob.select(*READ_COLUMNS).where(await _visible(principal)).output(load_json=True)
        rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).run()
        return rows

    rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
    return ImportPage(items=[import_read(row) for row in rows], next_cursor=after)


async def get_import(principal: Principal, import_id: int) -> ImportRead:
    """One import's progress; 404 when it is not one the caller may read."""

    async def one() -> dict[str, Any] | None:
        query = ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id, await _visible(principal))
        row: dict[str, Any] | None = await query.output(load_json=True).first().run()
        return row

    row = await read_in_tenant(principal.tenant, one)
    if row is None:
        raise NotFound(f"There is no import {import_id}.")
    return import_read(row)


async def cancel_import(principal: Principal, import_id: int, *, origin: Origin) -> ImportRead:
    """Stop an import after the batch in progress; what was imported stays."""
    async with tenant_scope(principal.tenant):
        row = (
            await ImportJob.select(ImportJob.status).where(ImportJob.id == import_id, await _visible(principal)).first()
        )
        if row is None:
            raise NotFound(f"There is no import {import_id}.")
        if row["status"] not in ("queued", "running"):
            raise Conflict(f"The import is {row['status']} already.")
        await ImportJob.update({ImportJob.status: "cancelled", ImportJob.finished_at: datetime.now(UTC)}).where(
            ImportJob.id == import_id
        )
        await record_audit(
            origin.user(principal),
            "import.cancelled",
            entity="import",
            entity_id=import_id,
            changes={"status": (row["status"], "cancelled")},
        )
        result = await ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id).output(load_json=True).first()
    assert result is not None
    return import_read(result)
