"""The import API: preview a file's columns, start an import, follow its progress, cancel it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from crm.platform.auth import Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, Limit, ListSpec, page_of, page_query
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.platform.timers import schedule
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import setting
from crm.tenants.imports.csvfile import CLIENT_FIELDS, UnreadableFile, detect_mapping, read_rows
from crm.tenants.imports.runner import DUPLICATE_RULES, KIND
from crm.tenants.imports.tables import ImportJob
from crm.tenants.users.scopes import records_in_scope

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
PREVIEW_ROWS = 5


@dataclass
class ImportUpload:
    file: UploadFile
    # A row matching an existing client by phone, e-mail or tax id: skip: is skipped; update: changes
    # that client (its given fields overwrite, phones, e-mails, tags and addresses merge); create: is
    # imported as a new client anyway.
    on_duplicate: str = "skip"
    # JSON object {"column header": "field"}; absent: detected from the headers.
    mapping: str | None = None


class ImportPreview(msgspec.Struct, kw_only=True):
    columns: list[str]
    mapping: dict[str, str]
    fields: list[str]
    rows: list[list[str]]
    total_rows: int


class ImportRead(msgspec.Struct, kw_only=True):
    id: int
    status: str
    filename: str
    mapping: dict[str, Any]
    on_duplicate: str
    total_rows: int
    processed_rows: int
    created_rows: int
    updated_rows: int
    unchanged_rows: int
    skipped_rows: int
    error_rows: int
    percent: int
    errors: list[dict[str, Any]]
    author_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportPage(msgspec.Struct, kw_only=True):
    items: list[ImportRead]
    next_cursor: str | None


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
Upload = Annotated[ImportUpload, Body(media_type=RequestEncodingType.MULTI_PART)]


def _read(row: dict[str, Any]) -> ImportRead:
    total = row["total_rows"]
    percent = 100 if row["status"] == "done" else (row["processed_rows"] * 100 // total if total else 0)
    return msgspec.convert({**row, "percent": percent}, ImportRead)


async def _custom_names() -> dict[str, dict[str, str]]:
    rows: list[dict[str, Any]] = await setting("custom_fields", [])
    return {row["key"]: row.get("names") or {} for row in rows if row.get("entity") == "client"}


def _check_rule(upload: ImportUpload) -> None:
    if upload.on_duplicate not in DUPLICATE_RULES:
        raise InvalidInput(
            "Unknown duplicate rule.",
            errors=[FieldError("on_duplicate", f"must be one of {', '.join(DUPLICATE_RULES)}")],
        )


async def _parsed(upload: ImportUpload) -> tuple[bytes, list[str], list[list[str]]]:
    content = await upload.file.read()
    try:
        header, rows = read_rows(content)
    except UnreadableFile as problem:
        raise InvalidInput(f"The file cannot be read: {problem}.", errors=[FieldError("file", str(problem))]) from None
    return content, header, rows


def _mapping(given: str | None, header: list[str], custom: dict[str, dict[str, str]]) -> dict[str, str]:
    if given is None:
        return detect_mapping(header, custom)
    try:
        mapping = json.loads(given)
    except json.JSONDecodeError:
        raise InvalidInput(
            "The mapping is not JSON.", errors=[FieldError("mapping", "must be a JSON object")]
        ) from None
    allowed = set(CLIENT_FIELDS) | {f"custom.{key}" for key in custom}
    errors = [
        FieldError(f"mapping.{column}", "no such column in the file" if column not in header else "unknown field")
        for column, field in (mapping.items() if isinstance(mapping, dict) else [])
        if column not in header or field not in allowed
    ]
    if not isinstance(mapping, dict) or errors:
        raise InvalidInput(
            "The mapping does not fit the file.", errors=errors or [FieldError("mapping", "must be an object")]
        )
    return {column: field for column, field in mapping.items() if field}


class ImportsController(Controller):
    path = "/api/v1/imports"
    tags = ["imports"]
    guards = [requires_module("import_export")]

    @post(
        "/preview",
        opt=permission("imports", "create"),
        status_code=HTTP_200_OK,
        operation_id="previewImport",
        summary="The columns of a CSV file, how they would be mapped, and its first rows",
    )
    async def preview(self, principal: NamedDependency[Principal], data: Upload) -> ImportPreview:
        # The preview reads no rows against the clients (no counts of what would be created
        # or updated); a wrong rule is still refused here, before the upload.
        _check_rule(data)
        _, header, rows = await _parsed(data)
        custom = await read_in_tenant(principal.tenant, _custom_names)
        return ImportPreview(
            columns=header,
            mapping=_mapping(data.mapping, header, custom),
            fields=[*CLIENT_FIELDS, *(f"custom.{key}" for key in custom)],
            rows=rows[:PREVIEW_ROWS],
            total_rows=len(rows),
        )

    @post(
        "/",
        opt=permission("imports", "create"),
        status_code=HTTP_202_ACCEPTED,
        operation_id="startImport",
        summary="Upload a CSV file of clients; it is imported in the background",
    )
    async def start(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: Upload
    ) -> ImportRead:
        if principal.scope("clients", "create") == "none":
            raise InvalidInput(
                "Your role may not create clients.", errors=[FieldError("file", "you may not create clients")]
            )
        _check_rule(data)
        if data.on_duplicate == "update" and principal.scope("clients", "update") == "none":
            raise InvalidInput(
                "Your role may not update clients.",
                errors=[FieldError("on_duplicate", "you may not update clients: choose skip or create")],
            )
        content, header, rows = await _parsed(data)
        async with tenant_scope(principal.tenant):
            mapping = _mapping(data.mapping, header, await _custom_names())
            if "name" not in mapping.values():
                raise InvalidInput(
                    "No column holds the client's name.", errors=[FieldError("mapping", "map a column to name")]
                )
            created = await ImportJob.insert(
                ImportJob(
                    filename=(data.file.filename or "import.csv")[:255],
                    content=content,
                    mapping=mapping,
                    on_duplicate=data.on_duplicate,
                    total_rows=len(rows),
                    author_id=principal.user_id,
                )
            ).returning(ImportJob.id)
            import_id = created[0]["id"]
            await record_audit(
                origin_of(request).user(principal),
                "import.started",
                entity="import",
                entity_id=import_id,
                changes={"filename": (None, data.file.filename), "rows": (None, len(rows)), "mapping": (None, mapping)},
            )
            await schedule(scope_connection(), KIND, principal.tenant.id, {"import_id": import_id})
            row = await ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id).output(load_json=True).first()
        assert row is not None
        return _read(row)

    @get("/", opt=permission("imports", "read"), operation_id="listImports", summary="Imports, newest first")
    async def list_imports(
        self, principal: NamedDependency[Principal], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> ImportPage:
        ordering = IMPORT_LIST.ordering(None)

        async def page() -> list[dict[str, Any]]:
            visible = await records_in_scope(principal, "imports", "read", ImportJob.author_id)
            query = ImportJob.select(*READ_COLUMNS).where(visible).output(load_json=True)
            return await page_query(query, ordering, cursor, limit).run()

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return ImportPage(items=[_read(row) for row in rows], next_cursor=after)

    @get(
        "/{import_id:int}", opt=permission("imports", "read"), operation_id="getImport", summary="An import's progress"
    )
    async def get_import(self, principal: NamedDependency[Principal], import_id: Id) -> ImportRead:
        async def one() -> dict[str, Any] | None:
            visible = await records_in_scope(principal, "imports", "read", ImportJob.author_id)
            query = ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id, visible).output(load_json=True)
            return await query.first().run()

        row = await read_in_tenant(principal.tenant, one)
        if row is None:
            raise NotFound(f"There is no import {import_id}.")
        return _read(row)

    @post(
        "/{import_id:int}/cancel",
        opt=permission("imports", "create"),
        status_code=HTTP_200_OK,
        operation_id="cancelImport",
        summary="Stop an import after the batch in progress; what was imported stays",
    )
    async def cancel(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], import_id: Id
    ) -> ImportRead:
        async with tenant_scope(principal.tenant):
            visible = await records_in_scope(principal, "imports", "read", ImportJob.author_id)
            row = await ImportJob.select(ImportJob.status).where(ImportJob.id == import_id, visible).first()
            if row is None:
                raise NotFound(f"There is no import {import_id}.")
            if row["status"] not in ("queued", "running"):
                raise Conflict(f"The import is {row['status']} already.")
            await ImportJob.update(
                {ImportJob.status: "cancelled", ImportJob.finished_at: datetime.now().astimezone()}
            ).where(ImportJob.id == import_id)
            await record_audit(
                origin_of(request).user(principal),
                "import.cancelled",
                entity="import",
                entity_id=import_id,
                changes={"status": (row["status"], "cancelled")},
            )
            result = (
                await ImportJob.select(*READ_COLUMNS).where(ImportJob.id == import_id).output(load_json=True).first()
            )
        assert result is not None
        return _read(result)


CONTROLLERS = [ImportsController]
