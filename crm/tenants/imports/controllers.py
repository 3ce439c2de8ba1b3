"""The import API: preview a file's columns, start an import, follow its progress, cancel it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, Limit
from crm.platform.security import origin_of, permission, requires_module
from crm.tenants.imports import services
from crm.tenants.imports.schemas import ImportPage, ImportPreview, ImportRead

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


@dataclass
class ImportUpload:
    file: UploadFile
    # A row matching an existing client by phone, e-mail or tax id: skip: is skipped; update: changes
    # that client (its given fields overwrite, phones, e-mails, tags and addresses merge); create: is
    # imported as a new client anyway.
    on_duplicate: str = "skip"
    # JSON object {"column header": "field"}; absent: detected from the headers.
    mapping: str | None = None


Upload = Annotated[ImportUpload, Body(media_type=RequestEncodingType.MULTI_PART)]


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
        content = await data.file.read()
        return await services.preview_file(principal, content, mapping=data.mapping, on_duplicate=data.on_duplicate)

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
        return await services.start_import(
            principal,
            filename=data.file.filename,
            content=await data.file.read(),
            on_duplicate=data.on_duplicate,
            mapping=data.mapping,
            origin=origin_of(request),
        )

    @get("/", opt=permission("imports", "read"), operation_id="listImports", summary="Imports, newest first")
    async def list_imports(
        self, principal: NamedDependency[Principal], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> ImportPage:
        return await services.list_imports(principal, cursor=cursor, limit=limit)

    @get(
        "/{import_id:int}", opt=permission("imports", "read"), operation_id="getImport", summary="An import's progress"
    )
    async def get_import(self, principal: NamedDependency[Principal], import_id: Id) -> ImportRead:
        return await services.get_import(principal, import_id)

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
        return await services.cancel_import(principal, import_id, origin=origin_of(request))


CONTROLLERS = [ImportsController]
