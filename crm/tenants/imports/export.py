"""Exporting clients as CSV: what the caller may export, in a file Excel opens as it is
(UTF-8 with BOM, semicolons) and the import reads back (the same column names).

An export is the first thing a departing manager takes, so it needs its own right
(``clients.export``, with its own scope) and every export is in the audit log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Stream

from crm.platform.auth import Principal
from crm.platform.listing import IdFilter
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.settings import setting
from crm.tenants.users.scopes import records_in_scope
from crm.tenants.users.tables import User

BATCH = 2000
HEADERS = {
    "ru": [
        "ID",
        "Тип",
        "Название",
        "Телефоны",
        "E-mail",
        "ИНН",
        "Статус",
        "Источник",
        "Теги",
        "Ответственный",
        "Дата рождения",
    ],
    "en": ["ID", "Kind", "Name", "Phones", "E-mail", "Tax ID", "Status", "Source", "Tags", "Responsible", "Birthday"],
}
_COLUMNS = (
    Client.id,
    Client.kind,
    Client.name,
    Client.phones,
    Client.emails,
    Client.tax_id,
    Client.status,
    Client.source,
    Client.tags,
    Client.responsible_id,
    Client.birthday,
    Client.custom,
)


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


async def _rows(principal: Principal, filters: dict[str, Any]) -> AsyncIterator[str]:
    """The file, batch by batch (each batch its own short transaction)."""
    language = "ru" if principal.locale == "ru" else "en"

    async def header() -> dict[str, Any]:
        fields = [f for f in await setting("custom_fields", []) if f.get("entity") == "client"]
        users = {row["id"]: row["email"] for row in await User.select(User.id, User.email)}
        return {"keys": [f["key"] for f in fields], "names": [f["names"][language] for f in fields], "emails": users}

    meta = await read_in_tenant(principal.tenant, header)
    custom_keys: list[str] = meta["keys"]
    emails: dict[int, str] = meta["emails"]
    yield "\ufeff" + _line([*HEADERS[language], *meta["names"]])
    after = 0
    while True:
        rows = await read_in_tenant(principal.tenant, partial(_batch, principal, filters, after))
        if not rows:
            return
        for row in rows:
            custom = row["custom"] or {}
            yield _line(
                [
                    row["id"],
                    row["kind"],
                    row["name"],
                    ", ".join(row["phones"]),
                    ", ".join(row["emails"]),
                    row["tax_id"] or "",
                    row["status"],
                    row["source"],
                    ", ".join(row["tags"]),
                    emails.get(row["responsible_id"], "") if row["responsible_id"] else "",
                    row["birthday"].strftime("%d.%m.%Y") if row["birthday"] else "",
                    *(_cell(custom.get(key)) for key in custom_keys),
                ]
            )
        after = rows[-1]["id"]


async def _batch(principal: Principal, filters: dict[str, Any], after: int) -> list[dict[str, Any]]:
    exportable = await records_in_scope(principal, "clients", "export", Client.responsible_id, Client.author_id)
    query = Client.select(*_COLUMNS).where(Client.id > after, exportable)
    for column, wanted in filters.items():
        query = query.where(getattr(Client, column) == wanted)
    rows: list[dict[str, Any]] = await query.order_by(Client.id).limit(BATCH).output(load_json=True)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "да" if value else "нет"
    return str(value)


class ExportController(Controller):
    path = "/api/v1/exports"
    tags = ["imports"]
    guards = [requires_module("import_export")]

    @get(
        "/clients.csv",
        opt=permission("clients", "export"),
        operation_id="exportClients",
        summary="The clients you may export, as CSV (the import reads it back)",
        media_type="text/csv",
    )
    async def clients(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        status: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        responsible_id: IdFilter = None,
    ) -> Stream:
        filters = {
            name: value
            for name, value in (("status", status), ("kind", kind), ("responsible_id", responsible_id))
            if value is not None
        }
        async with tenant_scope(principal.tenant):
            await record_audit(
                origin_of(request).user(principal),
                "clients.exported",
                entity="client",
                changes={name: (None, value) for name, value in filters.items()},
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Stream(
            _rows(principal, filters),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="clients-{stamp}.csv"'},
        )


CONTROLLERS = [ExportController]
