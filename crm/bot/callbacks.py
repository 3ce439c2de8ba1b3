"""Callback data of the bot's inline buttons, one class per kind of button.

Telegram gives callback data 64 bytes: prefixes are short and values are ids, never names.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class CompanyChoice(CallbackData, prefix="co"):
    """Work in another of the companies this Telegram account is linked to."""

    tenant_id: str


class LanguageChoice(CallbackData, prefix="lang"):
    locale: str


# --- daily work: tasks, client lookup, calls -------------------------------------------


class AgendaTaskDone(CallbackData, prefix="wdone"):
    """Done on a task of the /today or /week list; ``view`` ("today"/"week") redraws it."""

    task_id: int
    view: str


class ClientCardOpen(CallbackData, prefix="wcard"):
    client_id: int


class ClientHistory(CallbackData, prefix="whis"):
    """The client's activities, a page older than (``before_us`` µs since the epoch,
    ``before_id``); 0 and 0 for the newest page."""

    client_id: int
    before_us: int = 0
    before_id: int = 0


class ClientDeals(CallbackData, prefix="wdeals"):
    client_id: int


class CallLogStart(CallbackData, prefix="wcall"):
    client_id: int


class CallOutcomePick(CallbackData, prefix="wcout"):
    """The position of the outcome in the list shown (kept in the conversation's data), so
    a company's outcome key never has to fit in the 64 bytes."""

    index: int


class CallNextStep(CallbackData, prefix="wcnext"):
    """Follow-up in ``days`` (0: none)."""

    days: int


class CallPickDate(CallbackData, prefix="wcmon"):
    """The next step's calendar showing ``year``-``month`` (this month or the next): the
    "pick a date" choice and the calendar's ◀ ▶."""

    year: int
    month: int


class CallDueDay(CallbackData, prefix="wcday"):
    """A day pressed in the next step's calendar."""

    year: int
    month: int
    day: int


class CalendarBlank(CallbackData, prefix="wcnop"):
    """A calendar cell that is no choice: a heading, a padding cell, a day already past."""


class WorkStep(CallbackData, prefix="wstep"):
    """``skip`` the comment, or ``cancel`` the conversation."""

    action: str


class NewTaskStart(CallbackData, prefix="wtask"):
    client_id: int


class NewTaskDue(CallbackData, prefix="wtdue"):
    days: int


# --- reminders (crm/bot/routers/reminders.py) ---------------------------------------------


class ReminderDone(CallbackData, prefix="rmd"):
    """Mark the reminded task done."""

    task_id: int


class ReminderSnooze(CallbackData, prefix="rms"):
    """Remind again: ``choice`` is one of crm.tenants.reminders.snooze.SNOOZE_CHOICES."""

    task_id: int
    choice: str


class TaskReassign(CallbackData, prefix="wre"):
    task_id: int


class TaskReassignTo(CallbackData, prefix="wreto"):
    task_id: int
    user_id: int
