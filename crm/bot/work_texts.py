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
        "button.history": "🕘 История",
        "button.deals": "💼 Сделки",
        "button.older": "Раньше ▶",
        "button.card": "↩ Карточка",
        "history.title": "{client}: история",
        "history.older": "{client}: история, раньше",
        "history.empty": "{client}: действий пока нет.",
        "deals.title": "{client}: сделки",
        "deals.empty": "{client}: сделок нет.",
        "deals.more": "…и ещё сделки — в CRM.",
        "button.skip": "Без комментария",
        "button.cancel": "Отмена",
        "kind.call": "Звонок",
        "kind.meeting": "Встреча",
        "kind.note": "Заметка",
        "kind.email": "Письмо",
        "call.outcome": "Звонок клиенту «{client}». Чем закончился?",
        "call.comment": "Комментарий к звонку — напишите его, надиктуйте голосовым или нажмите «Без комментария».",
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
        "call.text": "Пришлите комментарий текстом или голосовым сообщением, или нажмите «Без комментария».",
        "call.buttons": "Выберите вариант кнопкой выше или нажмите «Отмена».",
        "next.pick": "📅 Выбрать дату",
        "call.pick_date": "На какой день? Выберите в календаре или напишите дату: 28.11, 28.11.2026 или 2026-11-28.",
        "call.date_past": "Эта дата уже прошла — выберите сегодняшнюю или позже.",
        "call.date_unknown": "Не понимаю дату «{text}». Напишите, например, 28.11, 28.11.2026 или 2026-11-28.",
        "call.voice_note": "🎤 Голосовое сообщение, {duration}",
        "call.audio_note": "🎵 Аудиозапись, {duration}",
        "call.voice_too_big": "Запись больше 20 МБ: Telegram не даёт ботам скачивать такие файлы. "
        "Пришлите запись покороче или напишите комментарий текстом.",
        "call.voice_failed": "Не получилось забрать запись из Telegram, звонок не сохранён. "
        "Пришлите запись ещё раз или напишите комментарий текстом.",
        "month.1": "Январь",
        "month.2": "Февраль",
        "month.3": "Март",
        "month.4": "Апрель",
        "month.5": "Май",
        "month.6": "Июнь",
        "month.7": "Июль",
        "month.8": "Август",
        "month.9": "Сентябрь",
        "month.10": "Октябрь",
        "month.11": "Ноябрь",
        "month.12": "Декабрь",
        "weekday.1": "Пн",
        "weekday.2": "Вт",
        "weekday.3": "Ср",
        "weekday.4": "Чт",
        "weekday.5": "Пт",
        "weekday.6": "Сб",
        "weekday.7": "Вс",
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
        "button.history": "🕘 History",
        "button.deals": "💼 Deals",
        "button.older": "Older ▶",
        "button.card": "↩ Card",
        "history.title": "{client}: history",
        "history.older": "{client}: history, older",
        "history.empty": "{client}: no activities yet.",
        "deals.title": "{client}: deals",
        "deals.empty": "{client}: no deals.",
        "deals.more": "…and more deals in the CRM.",
        "button.skip": "No comment",
        "button.cancel": "Cancel",
        "kind.call": "Call",
        "kind.meeting": "Meeting",
        "kind.note": "Note",
        "kind.email": "E-mail",
        "call.outcome": "A call to {client}. How did it go?",
        "call.comment": "A comment on the call: type it, record a voice note, or press “No comment”.",
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
        "call.text": "Send the comment as text or as a voice note, or press “No comment”.",
        "call.buttons": "Choose with a button above, or press “Cancel”.",
        "next.pick": "📅 Pick a date",
        "call.pick_date": "Which day? Pick it in the calendar or type a date: 28.11, 28.11.2026 or 2026-11-28.",
        "call.date_past": "That date has passed: pick today or a later day.",
        "call.date_unknown": "“{text}” is not a date I understand. Type e.g. 28.11, 28.11.2026 or 2026-11-28.",
        "call.voice_note": "🎤 Voice note, {duration}",
        "call.audio_note": "🎵 Audio, {duration}",
        "call.voice_too_big": "The recording is over 20 MB: Telegram does not let bots download such files. "
        "Send a shorter one, or type the comment.",
        "call.voice_failed": "Could not fetch the recording from Telegram, so the call is not saved yet. "
        "Send the recording again, or type the comment.",
        "month.1": "January",
        "month.2": "February",
        "month.3": "March",
        "month.4": "April",
        "month.5": "May",
        "month.6": "June",
        "month.7": "July",
        "month.8": "August",
        "month.9": "September",
        "month.10": "October",
        "month.11": "November",
        "month.12": "December",
        "weekday.1": "Mo",
        "weekday.2": "Tu",
        "weekday.3": "We",
        "weekday.4": "Th",
        "weekday.5": "Fr",
        "weekday.6": "Sa",
        "weekday.7": "Su",
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
