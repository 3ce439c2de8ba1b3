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


class CallLogStart(CallbackData, prefix="wcall"):
    client_id: int


class CallOutcomePick(CallbackData, prefix="wcout"):
    """The position of the outcome in the list shown (kept in the conversation's data), so
    a company's outcome key never has to fit in the 64 bytes."""

    index: int


class CallNextStep(CallbackData, prefix="wcnext"):
    """Follow-up in ``days`` (0: none)."""

    days: int


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
