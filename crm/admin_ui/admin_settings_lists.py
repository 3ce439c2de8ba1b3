"""Settings pages for the company's short lists: call outcomes and task types.

Each list is one form: every entry's names (and, for outcomes, whether a next step is
required), an empty row to add one, and per-entry buttons to move it up or down or delete
it. Every button saves the whole list at once through the same service the API's PUT
uses, so edits typed before pressing "up" are kept, and a list that breaks a rule is not
saved (the form comes back with the errors next to the fields).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath

from crm.admin_ui.admin_forms import (
    MAX_ROWS,
    after_save,
    apply_op,
    blank,
    checked,
    ensure_allowed,
    field_errors,
    notice_of,
    revision_of,
    settings_tabs,
    text,
)
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.texts import add_texts
from crm.platform.auth import Origin, Principal
from crm.platform.errors import InvalidInput
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.activities.outcomes import replace_call_outcomes
from crm.tenants.activities.schemas import CallOutcome
from crm.tenants.activities.services import call_outcomes
from crm.tenants.configuration.task_types import TaskType, replace_task_types, task_types

add_texts(
    {
        "ru": {
            "settings.outcomes.title": "Итоги звонков",
            "settings.outcomes.intro": "Из этого списка сотрудники выбирают итог звонка в боте и в консоли. "
            "Удалённый итог остаётся у уже записанных звонков.",
            "settings.outcomes.next_step": "Требует следующего шага",
            "settings.task_types.title": "Типы задач",
            "settings.task_types.intro": "Тип задаётся задаче при создании. Удалённый тип остаётся у уже "
            "созданных задач.",
        },
        "en": {
            "settings.outcomes.title": "Call outcomes",
            "settings.outcomes.intro": "Staff pick a call's outcome from this list in the bot and the console. "
            "A removed outcome stays on the calls already logged with it.",
            "settings.outcomes.next_step": "Requires a next step",
            "settings.task_types.title": "Task types",
            "settings.task_types.intro": "A task gets its type when it is created. A removed type stays on the "
            "tasks already filed under it.",
        },
    }
)


@dataclass(frozen=True)
class ShortList:
    """One editable list: where its page is, what its data needs, how it is read and saved."""

    path: str
    module: str
    prefix: str  # of its texts: settings.outcomes, settings.task_types
    flag: str | None  # a yes/no field of each entry, with its label
    read: Callable[[], Awaitable[list[dict[str, Any]]]]
    save: Callable[[Principal, list[dict[str, Any]], Origin], Awaitable[Any]]


async def _save_outcomes(principal: Principal, rows: list[dict[str, Any]], origin: Origin) -> Any:
    return await replace_call_outcomes(principal, msgspec.convert(rows, list[CallOutcome]), origin=origin)


async def _save_task_types(principal: Principal, rows: list[dict[str, Any]], origin: Origin) -> Any:
    types = msgspec.convert([{"key": row["key"], "names": row["names"]} for row in rows], list[TaskType])
    return await replace_task_types(principal, types, origin=origin)


OUTCOMES = ShortList(
    "/admin/settings/outcomes", "calls", "settings.outcomes", "requires_next_step", call_outcomes, _save_outcomes
)
TASK_TYPES = ShortList("/admin/settings/task-types", "tasks", "settings.task_types", None, task_types, _save_task_types)


def _posted_rows(form: FormMultiDict, flag: str | None) -> list[dict[str, Any]]:
    """The entries as posted, in order (the row for a new entry too, blank or not)."""
    rows = []
    posted = text(form, "count")
    count = min(int(posted), MAX_ROWS) if posted.isdigit() else 0
    for index in range(count):
        row: dict[str, Any] = {
            "key": text(form, f"key.{index}"),
            "names": {"ru": text(form, f"ru.{index}"), "en": text(form, f"en.{index}")},
        }
        if flag is not None:
            row[flag] = checked(form, f"flag.{index}")
        rows.append(row)
    return rows


async def _list_page(
    console: Console,
    kind: ShortList,
    *,
    rows: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    stale: bool = False,
    status: int = 200,
) -> Response[str]:
    stored = await read_in_tenant(console.tenant, kind.read)
    return render(
        console,
        "admin_settings_list.html",
        status_code=status,
        kind=kind,
        tabs=settings_tabs(console),
        rows=stored if rows is None else rows,
        stored_keys={row.get("key") for row in stored},
        revision=revision_of(stored),
        errors=errors or {},
        notice=notice,
        stale=stale,
        can_edit=console.may("settings", "update"),
    )


async def _show(request: Request[Any, Any, Any], company: str, kind: ShortList) -> Response[str]:
    console = await open_console(request, company)
    ensure_allowed(console, "settings", "read", kind.module)
    return await _list_page(console, kind, notice=notice_of(console, request))


async def _save(request: Request[Any, Any, Any], company: str, kind: ShortList) -> Response[Any]:
    console = await open_console(request, company)
    ensure_allowed(console, "settings", "update", kind.module)
    form = await request.form()
    rows = [row for row in apply_op(_posted_rows(form, kind.flag), text(form, "op")) if not blank(row)]
    try:
        async with tenant_scope(console.tenant):
            if revision_of(await kind.read()) != text(form, "revision"):
                stale = True
            else:
                stale = False
                await kind.save(console.user, rows, console.origin())
    except InvalidInput as problem:
        return await _list_page(console, kind, rows=rows, errors=field_errors(problem), status=422)
    if stale:
        return await _list_page(console, kind, stale=True, status=409)

    async def show(notice: str) -> Response[str]:
        return await _list_page(console, kind, notice=notice)

    return await after_save(console, request, kind.path, show)


class ShortListsController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(OUTCOMES.path, opt=PUBLIC)
    async def outcomes_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        return await _show(request, company, OUTCOMES)

    @post(OUTCOMES.path, opt=PUBLIC)
    async def save_outcomes(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        return await _save(request, company, OUTCOMES)

    @get(TASK_TYPES.path, opt=PUBLIC)
    async def task_types_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        return await _show(request, company, TASK_TYPES)

    @post(TASK_TYPES.path, opt=PUBLIC)
    async def save_task_types(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        return await _save(request, company, TASK_TYPES)


CONTROLLERS: list[type] = [ShortListsController]
