"""Choosing a day in the chat: an inline calendar (this month and the next, ◀ ▶ between
them, days already past not pressable) and dates typed the ways people write them.

Pure functions of "today on the user's clock", so the caller decides the zone.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from crm.bot.callbacks import CalendarBlank, CallDueDay, CallPickDate, WorkStep
from crm.bot.work_texts import WorkTexts

# The calendar shows this month and this many after it; further days can be typed.
MONTHS_AHEAD = 1
_DAY_MONTH = re.compile(r"^(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_typed_date(text: str, today: date) -> date | None:
    """The day in ``28.11.2026``, ``2026-11-28`` or ``28.11``; None when ``text`` is none.

    ``28.11`` without a year is the next 28 November from ``today`` (today included): a
    follow-up is always ahead, so in December "10.01" means the coming January. A date
    with its year is taken as written, past or not: the caller refuses the past.
    """
    typed = text.strip()
    parts: tuple[int, int, int]
    if match := _ISO.fullmatch(typed):
        parts = (int(match[1]), int(match[2]), int(match[3]))
    elif match := _DAY_MONTH.fullmatch(typed):
        day, month = int(match[1]), int(match[2])
        if match[3] is not None:
            parts = (int(match[3]), month, day)
        else:
            this_year = _date_or_none(today.year, month, day)
            if this_year is not None and this_year >= today:
                return this_year
            return _date_or_none(today.year + 1, month, day)
    else:
        return None
    return _date_or_none(*parts)


def _date_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def months_shown(today: date) -> list[tuple[int, int]]:
    """(year, month) of the calendar pages: today's month and the ones after it."""
    pages = []
    year, month = today.year, today.month
    for _ in range(MONTHS_AHEAD + 1):
        pages.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return pages


def calendar_keyboard(year: int, month: int, today: date, words: WorkTexts) -> InlineKeyboardMarkup:
    """The month's days as buttons under a ``◀ Month YYYY ▶`` heading; Cancel below.

    ``(year, month)`` must be one of :func:`months_shown`."""
    pages = months_shown(today)
    page = pages.index((year, month))
    blank = CalendarBlank().pack()
    previous = _button(" ", blank)
    if page > 0:
        previous = _button("◀", CallPickDate(year=pages[page - 1][0], month=pages[page - 1][1]).pack())
    following = _button(" ", blank)
    if page + 1 < len(pages):
        following = _button("▶", CallPickDate(year=pages[page + 1][0], month=pages[page + 1][1]).pack())
    heading = [previous, _button(f"{words(f'month.{month}')} {year}", blank), following]
    rows = [heading, [_button(words(f"weekday.{number}"), blank) for number in range(1, 8)]]
    for week in calendar.Calendar(firstweekday=0).monthdayscalendar(year, month):
        row = []
        for day in week:
            if day == 0:
                row.append(_button(" ", blank))
            elif date(year, month, day) < today:
                row.append(_button("·", blank))
            else:
                row.append(_button(str(day), CallDueDay(year=year, month=month, day=day).pack()))
        rows.append(row)
    rows.append([_button(words("button.cancel"), WorkStep(action="cancel").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)
