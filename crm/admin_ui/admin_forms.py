"""What the admin pages (settings, plan, audit) share: the right and module a page needs,
reading posted forms, and turning a service's refusal into errors shown next to the fields.

The services name a bad field the way the API does (``2.names.ru``); the pages use those
names as their error keys, so one refusal reads the same on either channel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar import Request, Response

from crm.admin_ui.console import Console, is_htmx, redirect, require
from crm.admin_ui.texts import add_texts
from crm.platform.errors import CrmError

Form = Mapping[str, Any]
# Rows a list form may post: above the services' own limits (50, 100), so they refuse.
MAX_ROWS = 120


def text(form: Form, name: str) -> str:
    """A posted text field, stripped ('' when absent)."""
    return str(form.get(name) or "").strip()


def checked(form: Form, name: str) -> bool:
    return form.get(name) not in (None, "", "0", "off")


def field_errors(problem: CrmError) -> dict[str, str]:
    """``{field: detail}`` of a refusal; a refusal naming no field is filed under ``""``."""
    errors: dict[str, str] = {}
    for error in problem.errors:
        # "body" is the API's name for the request as a whole: here, the form as a whole.
        errors.setdefault("" if error.field == "body" else error.field, error.detail)
    named = problem.extra.get("field")
    if isinstance(named, str):
        errors.setdefault(named, problem.detail)
    if not errors:
        errors[""] = problem.detail
    return errors


def apply_op(rows: list[dict[str, Any]], op: str) -> list[dict[str, Any]]:
    """The list after the button pressed: ``up:N``, ``down:N``, ``delete:N`` or a plain save."""
    action, _, at = op.partition(":")
    if not at.isdigit() or int(at) >= len(rows):
        return rows
    index = int(at)
    rows = list(rows)
    if action == "delete":
        del rows[index]
    elif action == "up" and index > 0:
        rows[index - 1], rows[index] = rows[index], rows[index - 1]
    elif action == "down" and index < len(rows) - 1:
        rows[index + 1], rows[index] = rows[index], rows[index + 1]
    return rows


def blank(row: dict[str, Any]) -> bool:
    """An entry with neither key nor names: the unused row for a new entry."""
    return not (row.get("key") or any(row.get("names", {}).values()))


def revision_of(value: Any) -> str:
    """A short fingerprint of a stored list: a form carries the one it was shown with, so a
    save over someone else's newer change is noticed instead of silently undoing it."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


async def after_save(
    console: Console,
    request: Request[Any, Any, Any],
    path: str,
    show: Callable[[str], Awaitable[Response[Any]]],
) -> Response[Any]:
    """After a successful change: back to the page (303, so a reload does not post again);
    htmx gets the fresh page at once (``show`` with the notice) and swaps in its part."""
    if is_htmx(request):
        return await show(console.texts("common.saved"))
    return redirect(console, request, console.url(path) + "?saved=1")


def notice_of(console: Console, request: Request[Any, Any, Any]) -> str | None:
    return console.texts("common.saved") if request.query_params.get("saved") else None


def status_of(problem: CrmError) -> int:
    """422 for invalid input, 409 for a conflict: the page answers with the service's status."""
    return problem.status if problem.status in (409, 422) else 422


# The settings pages, each shown only when the edition has the module its data belongs to
# (the API answers 402 for the same data otherwise).
SETTINGS_TABS = (
    ("/admin/settings", "settings.tab.company", None),
    ("/admin/settings/outcomes", "settings.tab.outcomes", "calls"),
    ("/admin/settings/task-types", "settings.tab.task_types", "tasks"),
    ("/admin/settings/pipelines", "settings.tab.pipelines", "deals"),
    ("/admin/settings/fields", "settings.tab.fields", "custom_fields"),
    ("/admin/settings/mail", "settings.tab.mail", None),
    ("/admin/settings/webforms", "settings.tab.webforms", "webforms"),
)


def settings_tabs(console: Console) -> list[tuple[str, str]]:
    """``(url, label)`` of the settings pages this company has."""
    return [
        (console.url(path), console.texts(label))
        for path, label, module in SETTINGS_TABS
        if module is None or console.has_module(module)
    ]


add_texts(
    {
        "ru": {
            "settings.title": "Настройки",
            "settings.tabs": "Разделы настроек",
            "settings.tab.company": "Компания",
            "settings.tab.outcomes": "Итоги звонков",
            "settings.tab.task_types": "Типы задач",
            "settings.tab.pipelines": "Воронки",
            "settings.tab.fields": "Дополнительные поля",
            "settings.tab.mail": "Почта",
            "settings.read_only": "Ваша роль позволяет только смотреть эти настройки.",
            "settings.stale": "Пока вы редактировали, список изменил кто-то другой. Ваши правки не сохранены — "
            "вот текущий список.",
            "settings.key": "Ключ",
            "settings.name_ru": "Название по-русски",
            "settings.name_en": "Название по-английски",
            "settings.up": "Выше",
            "settings.down": "Ниже",
            "settings.delete": "Удалить",
            "settings.add": "Добавить",
            "settings.new_item": "Новая запись",
            "settings.key_hint": "Латиница, цифры и _, с буквы; потом не меняется.",
        },
        "en": {
            "settings.title": "Settings",
            "settings.tabs": "Settings sections",
            "settings.tab.company": "Company",
            "settings.tab.outcomes": "Call outcomes",
            "settings.tab.task_types": "Task types",
            "settings.tab.pipelines": "Pipelines",
            "settings.tab.fields": "Custom fields",
            "settings.tab.mail": "Mail",
            "settings.read_only": "Your role lets you view these settings only.",
            "settings.stale": "Someone else changed this list while you were editing. Your changes are not saved; "
            "here is the current list.",
            "settings.key": "Key",
            "settings.name_ru": "Name in Russian",
            "settings.name_en": "Name in English",
            "settings.up": "Up",
            "settings.down": "Down",
            "settings.delete": "Delete",
            "settings.add": "Add",
            "settings.new_item": "New entry",
            "settings.key_hint": "Latin letters, digits and _, starting with a letter; cannot change later.",
        },
    }
)


# The admin pages' name for the shared check.
ensure_allowed = require
