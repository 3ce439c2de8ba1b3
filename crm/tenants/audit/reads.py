"""Reading the audit log: one filtered, keyset-paged query for the API and the console, and
the CSV export of the same rows.

The log is append-only and can be large (a million rows is an ordinary year of a busy
company), so every read pages by id and the export streams in batches, each batch its own
short transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.query import Select

from crm.platform.auth import Origin, Principal
from crm.platform.listing import ListSpec, Ordering, page_of, page_query
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.audit.tables import AuditEntry
from crm.tenants.users.tables import User

READ_COLUMNS = (
    AuditEntry.id,
    AuditEntry.occurred_at,
    AuditEntry.actor_kind,
    AuditEntry.actor_id,
    AuditEntry.actor_label,
    AuditEntry.channel,
    AuditEntry.action,
    AuditEntry.entity,
    AuditEntry.entity_id,
    AuditEntry.changes,
    AuditEntry.request_id,
    AuditEntry.client_address,
)

# The chain's order is the log's order: newest first unless asked otherwise.
AUDIT_LIST = ListSpec(sortable={"id": AuditEntry.id}, default_sort="-id")
EXPORT_BATCH = 2000
EXPORT_HEADERS = {
    "ru": [
        "ID",
        "Время",
        "Кто",
        "Тип автора",
        "Канал",
        "Действие",
        "Объект",
        "ID объекта",
        "Изменения",
        "Запрос",
        "Адрес",
    ],
    "en": [
        "ID",
        "Time",
        "Actor",
        "Actor kind",
        "Channel",
        "Action",
        "Entity",
        "Entity ID",
        "Changes",
        "Request",
        "Address",
    ],
}


@dataclass(frozen=True)
class AuditFilters:
    """What the API's query parameters and the console's filter form both narrow by; each
    ``None`` is no filter. ``occurred_at_to`` is exclusive."""

    entity: str | None = None
    entity_id: str | None = None
    actor_id: int | None = None
    action: str | None = None
    occurred_at_from: datetime | None = None
    occurred_at_to: datetime | None = None

    def applied(self) -> dict[str, Any]:
        """The filters that are set, by name (for the audit row of an export)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def filtered(query: Select, filters: AuditFilters) -> Select:
    conditions = (
        (filters.entity, AuditEntry.entity == filters.entity),
        (filters.entity_id, AuditEntry.entity_id == filters.entity_id),
        (filters.actor_id, AuditEntry.actor_id == filters.actor_id),
        (filters.action, AuditEntry.action == filters.action),
        (filters.occurred_at_from, AuditEntry.occurred_at >= filters.occurred_at_from),
        (filters.occurred_at_to, AuditEntry.occurred_at < filters.occurred_at_to),
    )
    for wanted, condition in conditions:
        if wanted is not None:
            query = query.where(condition)
    return query


async def audit_page(
    filters: AuditFilters, ordering: Ordering, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the log (inside the open tenant scope) and the next page's cursor."""
    query = filtered(AuditEntry.select(*READ_COLUMNS).output(load_json=True), filters)
    rows = await page_query(query, ordering, cursor, limit).run()
    return page_of(rows, ordering, limit)


async def known_actions(limit: int = 200) -> list[str]:
    """The distinct actions on record, in name order, for a filter's choices.

    A loose index scan over the action index: one index probe per distinct action,
    however many rows the log holds (a plain DISTINCT would read them all)."""
    rows = await scope_connection().fetch(
        """
        WITH RECURSIVE seen(action) AS (
            (SELECT action FROM audit_log ORDER BY action LIMIT 1)
            UNION ALL
            SELECT (SELECT a.action FROM audit_log a WHERE a.action > seen.action ORDER BY a.action LIMIT 1)
            FROM seen WHERE seen.action IS NOT NULL
        )
        SELECT action FROM seen WHERE action IS NOT NULL LIMIT $1
        """,
        limit,
    )
    return [row["action"] for row in rows]


async def actor_choices() -> list[dict[str, Any]]:
    """The company's users (deactivated ones too: their rows stay on record), by name, for
    a filter by who acted (inside the open tenant scope)."""
    rows: list[dict[str, Any]] = await User.select(User.id, User.name, User.email).order_by(User.name).order_by(User.id)
    return rows


async def record_audit_export(principal: Principal, filters: AuditFilters, *, origin: Origin) -> None:
    """An export of the log is itself on record, with the filters it used."""
    async with tenant_scope(principal.tenant):
        await record_audit(
            origin.user(principal),
            "audit.exported",
            entity="audit",
            changes={name: (None, value) for name, value in filters.applied().items()},
        )


async def audit_csv(principal: Principal, filters: AuditFilters, zone: ZoneInfo) -> AsyncIterator[str]:
    """The filtered log as CSV, newest first (UTF-8 with BOM and semicolons, as Excel opens
    it), times on ``zone``'s clock; batch by batch, each in its own short transaction."""
    language = "ru" if principal.locale == "ru" else "en"
    yield "\ufeff" + _line(EXPORT_HEADERS[language])
    before: int | None = None
    while True:
        rows = await read_in_tenant(principal.tenant, partial(_export_batch, filters, before))
        if not rows:
            return
        for row in rows:
            yield _line(
                [
                    row["id"],
                    row["occurred_at"].astimezone(zone).isoformat(timespec="seconds"),
                    row["actor_label"],
                    row["actor_kind"],
                    row["channel"],
                    row["action"],
                    row["entity"],
                    row["entity_id"] or "",
                    json.dumps(row["changes"], ensure_ascii=False, sort_keys=True),
                    row["request_id"] or "",
                    row["client_address"] or "",
                ]
            )
        before = rows[-1]["id"]


async def _export_batch(filters: AuditFilters, before: int | None) -> list[dict[str, Any]]:
    query = filtered(AuditEntry.select(*READ_COLUMNS).output(load_json=True), filters)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows: list[dict[str, Any]] = await query.order_by(AuditEntry.id, ascending=False).limit(EXPORT_BATCH)
    return rows


# A cell starting with one of these is a formula to a spreadsheet; some cells hold what
# anyone typed (the e-mail of a failed sign-in is the actor's label), so they are defused.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    cells = [f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value for value in values]
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
