"""What the staff work pages (tasks, planner, import, mailings, Telegram) share: the module
and right a page needs, a form's field errors, and moments typed on the user's own clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from crm.admin_ui.console import Console
from crm.admin_ui.texts import add_texts
from crm.platform.errors import InvalidInput

add_texts(
    {
        "ru": {
            "work.field_error": "Проверьте поле: {detail}",
            "work.refresh": "Обновить",
            "work.bad_parameter": "Неверный параметр «{field}» в адресе страницы.",
        },
        "en": {
            "work.field_error": "Please check this field: {detail}",
            "work.refresh": "Refresh",
            "work.bad_parameter": "The page address has an invalid “{field}” parameter.",
        },
    }
)


def field_errors(console: Console, problem: InvalidInput, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """One message per field of ``problem``: the page's own words for the fields it knows
    (``known``: field → text key), else the service's detail (several joined)."""
    messages: dict[str, list[str]] = {}
    for error in problem.errors:
        messages.setdefault(error.field, []).append(error.detail)
    shown: dict[str, str] = {}
    for field, details in messages.items():
        key = (known or {}).get(field)
        shown[field] = console.texts(key) if key else console.texts("work.field_error", detail="; ".join(details))
    if not shown:
        shown["_form"] = console.texts("work.field_error", detail=problem.detail)
    return shown


LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def local_moment(value: str, zone: ZoneInfo) -> datetime | None:
    """A ``datetime-local`` field (``YYYY-MM-DDTHH:MM``) read on ``zone``'s clock; None when
    it is not one."""
    try:
        return datetime.strptime(value.strip(), LOCAL_FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None


def local_day_start(value: str, zone: ZoneInfo) -> datetime | None:
    """The moment a ``date`` field's day (``YYYY-MM-DD``) begins in ``zone``; None when it is
    not a date."""
    try:
        return datetime.combine(date.fromisoformat(value.strip()), time(), tzinfo=zone)
    except ValueError:
        return None
