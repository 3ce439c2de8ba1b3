"""What the bot says while staff work (tasks, client lookup, calls), in Russian and
English, and how it writes dates: in the user's timezone, the way their language does.

Kept apart from :mod:`crm.bot.texts` (linking, help, language) so each feature's words
stay next to one another.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from crm.platform.auth import Principal
from crm.platform.editions import shipped_editions

# Telegram refuses messages over 4096 characters; a card is cut a little before that.
MAX_MESSAGE = 4000
# Button labels are cut so a long title leaves room for the rest of the keyboard.
MAX_LABEL = 48

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "denied": "Ваша роль не позволяет это сделать.",
        "today.title": "Ваши задачи на сегодня",
        "week.title": "Ваши задачи на 7 дней",
        "today.empty": "На сегодня открытых задач нет.",
        "week.empty": "На ближайшие 7 дней открытых задач нет.",
        "tasks.overdue": "Просрочено",
        "tasks.more": "…и ещё задачи — в CRM.",
        "day.today": "Сегодня, {day}",
        "day.tomorrow": "Завтра, {day}",
        "task.done": "Готово: «{title}».",
        "task.next": "Следующая: {when}.",
        "task.gone": "Эта задача вам недоступна.",
        "task.closed": "Задача уже закрыта.",
        "find.ask": "Напишите имя, телефон или ИНН клиента, например: /find Иванов",
        "find.length": "Нужно от 2 до 200 символов.",
        "find.none": "По запросу «{q}» клиентов не нашлось.",
        "find.found": "Клиенты по запросу «{q}»:",
        "card.gone": "Клиент не найден или недоступен вам.",
        "card.responsible": "Ответственный: {name}",
        "card.contacts": "Контакты:",
        "card.deals": "Открытые сделки:",
        "card.activities": "Последние действия:",
        "card.tasks": "Открытые задачи:",
        "button.call": "📞 Записать звонок",
        "button.task": "➕ Новая задача",
        "button.skip": "Без комментария",
        "button.cancel": "Отмена",
        "kind.call": "Звонок",
        "kind.meeting": "Встреча",
        "kind.note": "Заметка",
        "kind.email": "Письмо",
        "call.outcome": "Звонок клиенту «{client}». Чем закончился?",
        "call.comment": "Комментарий к звонку — напишите его или нажмите «Без комментария».",
        "call.next": "Следующий шаг?",
        "call.next_required": "Следующий шаг? Для этого итога он обязателен.",
        "next.1": "Завтра",
        "next.3": "Через 3 дня",
        "next.7": "Через неделю",
        "next.0": "Без следующего шага",
        "call.saved": "Звонок записан.",
        "call.saved_task": "Звонок записан. Задача «{title}» — {when}.",
        "call.invalid": "Не получилось сохранить: {problems}",
        "call.stale": "Этот разговор уже закончен — откройте клиента ещё раз.",
        "call.text": "Напишите комментарий текстом или нажмите «Без комментария».",
        "call.buttons": "Выберите вариант кнопкой выше или нажмите «Отмена».",
        "cancelled": "Отменено.",
        "task.ask_title": "Задача по клиенту «{client}». Что нужно сделать? Напишите текстом.",
        "task.ask_due": "Когда?",
        "due.0": "Сегодня",
        "task.created": "Задача «{title}» — {when}.",
        "button.reassign": "↪ {title}",
        "reassign.choose": "Кому передать задачу «{title}»?",
        "reassign.nobody": "Передать задачу некому.",
        "reassign.done": "Задача «{title}» передана: {name}.",
    },
    "en": {
        "denied": "Your role does not allow this.",
        "today.title": "Your tasks for today",
        "week.title": "Your tasks for the next 7 days",
        "today.empty": "No open tasks for today.",
        "week.empty": "No open tasks for the next 7 days.",
        "tasks.overdue": "Overdue",
        "tasks.more": "…and more tasks in the CRM.",
        "day.today": "Today, {day}",
        "day.tomorrow": "Tomorrow, {day}",
        "task.done": "Done: “{title}”.",
        "task.next": "Next one: {when}.",
        "task.gone": "This task is not available to you.",
        "task.closed": "The task is already closed.",
        "find.ask": "Type a client's name, phone or tax id, for example: /find Smith",
        "find.length": "Type 2 to 200 characters.",
        "find.none": "No clients found for “{q}”.",
        "find.found": "Clients for “{q}”:",
        "card.gone": "This client does not exist or is not available to you.",
        "card.responsible": "Responsible: {name}",
        "card.contacts": "Contacts:",
        "card.deals": "Open deals:",
        "card.activities": "Latest activities:",
        "card.tasks": "Open tasks:",
        "button.call": "📞 Log a call",
        "button.task": "➕ New task",
        "button.skip": "No comment",
        "button.cancel": "Cancel",
        "kind.call": "Call",
        "kind.meeting": "Meeting",
        "kind.note": "Note",
        "kind.email": "E-mail",
        "call.outcome": "A call to {client}. How did it go?",
        "call.comment": "A comment on the call: type it, or press “No comment”.",
        "call.next": "Next step?",
        "call.next_required": "Next step? This outcome needs one.",
        "next.1": "Tomorrow",
        "next.3": "In 3 days",
        "next.7": "In a week",
        "next.0": "No next step",
        "call.saved": "The call is logged.",
        "call.saved_task": "The call is logged. Task “{title}”: {when}.",
        "call.invalid": "Could not save: {problems}",
        "call.stale": "This conversation is over: open the client again.",
        "call.text": "Type the comment as text, or press “No comment”.",
        "call.buttons": "Choose with a button above, or press “Cancel”.",
        "cancelled": "Cancelled.",
        "task.ask_title": "A task for {client}. What needs doing? Type it.",
        "task.ask_due": "When?",
        "due.0": "Today",
        "task.created": "Task “{title}”: {when}.",
        "button.reassign": "↪ {title}",
        "reassign.choose": "Who should take “{title}”?",
        "reassign.nobody": "There is nobody to hand the task to.",
        "reassign.done": "Task “{title}” now belongs to {name}.",
    },
}

_WEEKDAYS = {
    "ru": ("пн", "вт", "ср", "чт", "пт", "сб", "вс"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class WorkTexts:
    """The work routers' words in one language: ``words("key", name=…)``."""

    __slots__ = ("locale",)

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in _TEXTS else "en"

    def __call__(self, key: str, **values: Any) -> str:
        return _TEXTS[self.locale][key].format(**values)

    def day(self, day: date) -> str:
        """``пт 27.11`` / ``Fri 27 Nov``."""
        weekday = _WEEKDAYS[self.locale][day.weekday()]
        if self.locale == "ru":
            return f"{weekday} {day:%d.%m}"
        return f"{weekday} {day.day} {_MONTHS_EN[day.month - 1]}"

    def day_heading(self, day: date, today: date) -> str:
        if day == today:
            return self("day.today", day=self.day(day))
        if (day - today).days == 1:
            return self("day.tomorrow", day=self.day(day))
        return self.day(day)

    def moment(self, at: datetime, zone: ZoneInfo) -> str:
        """A due time as the user reads it: ``пт 27.11 10:00`` in their timezone."""
        local = at.astimezone(zone)
        return f"{self.day(local.date())} {local:%H:%M}"


def label(text: str) -> str:
    """``text`` cut to fit a button."""
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def may(staff: Principal, module: str, entity: str, action: str) -> bool:
    """Whether the company's edition has ``module`` and the role grants ``entity.action``:
    what the API's module guard and route permission check before the same service call."""
    edition = shipped_editions().get(staff.tenant.edition)
    return edition is not None and edition.has_module(module) and staff.scope(entity, action) != "none"
