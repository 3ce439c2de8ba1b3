"""The audit log page: the company's log newest first, filtered by action, entity, who acted
and a date range (days on the user's clock), paged by keyset, each row opening to its
field-level changes (old → new); and the CSV export of the filtered rows.

Reading needs ``audit.read`` (as the API's list); the export ``audit.export`` and the
edition's ``audit_export`` module (as the API's export), and is itself on record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.params import FromPath
from litestar.response import Stream

from crm.admin_ui.admin_forms import ensure_allowed, field_errors
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.reads import (
    AUDIT_LIST,
    AuditFilters,
    actor_choices,
    audit_csv,
    audit_page,
    known_actions,
    record_audit_export,
)
from crm.tenants.tasks.reads import local_midnight, zone_of

PATH = "/admin/audit"
PAGE_SIZE = 50
MAX_TEXT = 64  # the width of the log's action and entity columns
FILTERS = ("action", "entity", "entity_id", "actor_id", "date_from", "date_to")

add_texts(
    {
        "ru": {
            "audit.title": "Журнал изменений",
            "audit.filters": "Отбор",
            "audit.action": "Действие",
            "audit.entity": "Объект",
            "audit.entity_id": "ID объекта",
            "audit.actor": "Кто",
            "audit.anyone": "Все",
            "audit.date_from": "С даты",
            "audit.date_to": "По дату (включительно)",
            "audit.apply": "Показать",
            "audit.reset": "Сбросить",
            "audit.export": "Выгрузить в CSV",
            "audit.export_module": "Выгрузка журнала входит в тариф «Корпоративный».",
            "audit.when": "Когда",
            "audit.channel": "Канал",
            "audit.changes": "Изменения",
            "audit.field": "Поле",
            "audit.before": "Было",
            "audit.after": "Стало",
            "audit.no_changes": "Без изменений полей.",
            "audit.empty": "Записей не найдено.",
            "audit.older": "Раньше →",
            "audit.first": "← К началу",
            "audit.bad_date": "Нужна дата в виде ГГГГ-ММ-ДД.",
            "audit.bad_range": "Дата «по» раньше даты «с».",
            "audit.bad_actor": "Выберите пользователя из списка.",
            "audit.too_long": "Не длиннее 64 символов.",
            "audit.request": "Запрос",
            "audit.address": "Адрес",
        },
        "en": {
            "audit.title": "Audit log",
            "audit.filters": "Filter",
            "audit.action": "Action",
            "audit.entity": "Entity",
            "audit.entity_id": "Entity ID",
            "audit.actor": "Who",
            "audit.anyone": "Anyone",
            "audit.date_from": "From date",
            "audit.date_to": "To date (inclusive)",
            "audit.apply": "Show",
            "audit.reset": "Reset",
            "audit.export": "Export as CSV",
            "audit.export_module": "Exporting the log is part of the Enterprise plan.",
            "audit.when": "When",
            "audit.channel": "Channel",
            "audit.changes": "Changes",
            "audit.field": "Field",
            "audit.before": "Before",
            "audit.after": "After",
            "audit.no_changes": "No field changes.",
            "audit.empty": "No entries found.",
            "audit.older": "Older →",
            "audit.first": "← Newest",
            "audit.bad_date": "Must be a date, YYYY-MM-DD.",
            "audit.bad_range": "The end date is before the start date.",
            "audit.bad_actor": "Choose a user from the list.",
            "audit.too_long": "At most 64 characters.",
            "audit.request": "Request",
            "audit.address": "Address",
        },
    }
)


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


def shown(value: Any) -> str:
    """A logged value as text: "—" for none, text as it is, anything else as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _by_key(value: Any) -> dict[str, Any] | None:
    """A list of keyed entries (call outcomes, task types, custom fields) by key; else None."""
    if isinstance(value, list) and all(isinstance(item, dict) and "key" in item for item in value):
        return {str(item["key"]): item for item in value}
    return None


def field_changes(changes: dict[str, Any]) -> list[FieldChange]:
    """``{field: [before, after]}`` as rows. Where both sides are objects (rights, a
    profile), one row per inner key that differs, named ``field.key``; where both are
    lists of keyed entries (a settings list), one row per entry added, removed or changed,
    named ``field[key]``, and one for a new order."""
    rows = []
    for name, pair in changes.items():
        before, after = [*pair, None, None][:2] if isinstance(pair, list) else (None, pair)
        old_items, new_items = _by_key(before), _by_key(after)
        if isinstance(before, dict) and isinstance(after, dict):
            inner = [key for key in sorted({*before, *after}) if before.get(key) != after.get(key)]
            rows += [FieldChange(f"{name}.{key}", shown(before.get(key)), shown(after.get(key))) for key in inner]
        elif old_items is not None and new_items is not None and (old_items or new_items):
            keys = [*new_items, *(key for key in old_items if key not in new_items)]
            rows += [
                FieldChange(f"{name}[{key}]", shown(old_items.get(key)), shown(new_items.get(key)))
                for key in keys
                if old_items.get(key) != new_items.get(key)
            ]
            kept_before = [key for key in old_items if key in new_items]
            kept_after = [key for key in new_items if key in old_items]
            if kept_before != kept_after:
                rows.append(FieldChange(f"{name} ↕", ", ".join(kept_before), ", ".join(kept_after)))
        else:
            rows.append(FieldChange(name, shown(before), shown(after)))
    return rows


def _day(console: Console, raw: str, field: str, errors: list[FieldError]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(FieldError(field, console.texts("audit.bad_date")))
        return None


def parse_filters(console: Console, query: dict[str, str]) -> AuditFilters:
    """The filter form's values as the log's filters; days are the user's days (the end
    day included). Raises InvalidInput naming each bad field."""
    errors: list[FieldError] = []
    for field in ("action", "entity", "entity_id"):
        if len(query[field]) > MAX_TEXT:
            errors.append(FieldError(field, console.texts("audit.too_long")))
    actor = query["actor_id"]
    if actor and not (actor.isdigit() and 1 <= int(actor) <= MAX_ID):
        errors.append(FieldError("actor_id", console.texts("audit.bad_actor")))
    zone = zone_of(console.user.timezone)
    first, last = (
        _day(console, query["date_from"], "date_from", errors),
        _day(console, query["date_to"], "date_to", errors),
    )
    if first and last and last < first:
        errors.append(FieldError("date_to", console.texts("audit.bad_range")))
    if errors:
        raise InvalidInput("The filters are not valid.", errors=errors)
    return AuditFilters(
        action=query["action"] or None,
        entity=query["entity"] or None,
        entity_id=query["entity_id"] or None,
        actor_id=int(actor) if actor else None,
        occurred_at_from=local_midnight(first, zone).astimezone(UTC) if first else None,
        occurred_at_to=local_midnight(last + timedelta(days=1), zone).astimezone(UTC) if last else None,
    )


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: str(request.query_params.get(name) or "").strip() for name in FILTERS}


def _page_size(request: Request[Any, Any, Any]) -> int:
    raw = str(request.query_params.get("limit") or "")
    return min(max(int(raw), 1), 200) if raw.isdigit() else PAGE_SIZE


class AuditPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def audit_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "audit", "read")
        query = _query(request)
        cursor = str(request.query_params.get("cursor") or "") or None
        limit = _page_size(request)
        entries: list[dict[str, Any]] = []
        after: str | None = None
        errors: dict[str, str] = {}
        async with tenant_scope(console.tenant):
            actors = await actor_choices()
            actions = await known_actions()
            try:
                filters = parse_filters(console, query)
                entries, after = await audit_page(filters, AUDIT_LIST.ordering(None), cursor, limit)
            except InvalidInput as problem:
                errors = field_errors(problem)
        filter_query = {name: value for name, value in query.items() if value}
        if limit != PAGE_SIZE:
            filter_query["limit"] = str(limit)
        return render(
            console,
            "admin_audit.html",
            status_code=422 if errors else 200,
            query=query,
            errors=errors,
            entries=[{**entry, "diff": field_changes(entry["changes"])} for entry in entries],
            actor_options=[(str(actor["id"]), f"{actor['name']} ({actor['email']})") for actor in actors],
            actions=actions,
            zone=zone_of(console.user.timezone),
            next_url=console.url(PATH) + "?" + urlencode({**filter_query, "cursor": after}) if after else None,
            first_url=console.url(PATH) + ("?" + urlencode(filter_query) if filter_query else "") if cursor else None,
            export_url=console.url(PATH + "/export.csv") + ("?" + urlencode(filter_query) if filter_query else ""),
            may_export=console.may("audit", "export", "audit_export"),
            export_in_other_plan=console.may("audit", "export") and not console.has_module("audit_export"),
        )

    @get(PATH + "/export.csv", opt=PUBLIC)
    async def export_audit(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Stream:
        console = await open_console(request, company)
        ensure_allowed(console, "audit", "export", "audit_export")
        filters = parse_filters(console, _query(request))
        await record_audit_export(console.user, filters, origin=console.origin())
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Stream(
            audit_csv(console.user, filters, zone_of(console.user.timezone)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"', "Cache-Control": "no-store"},
        )


CONTROLLERS: list[type] = [AuditPageController]

register_page(PATH)
