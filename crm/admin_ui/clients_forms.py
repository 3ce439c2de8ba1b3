"""What the client and deal pages share about forms: rights checks that answer the same
403/402 pages as the API, field errors shown next to their fields in the user's language,
and times typed in the user's timezone (exact, or a quick choice such as "tomorrow 10:00")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm.admin_ui.console import Console
from crm.admin_ui.texts import add_texts
from crm.platform.errors import FieldError, InvalidInput

# Quick choices for a next step or a task's due time: a key and how to compute it.
QUICK_TIMES = ("in_hour", "today_evening", "tomorrow", "in_two_days", "next_monday")
MORNING = time(10, 0)
EVENING = time(18, 0)

# Field errors in Russian for the fields these pages post; the services word their details
# in English, which the English pages show as they are.
add_texts(
    {
        "ru": {
            "clients.field.name": "Укажите название — от 1 до 300 символов.",
            "clients.field.phones": "Не похоже на номер телефона.",
            "clients.field.emails": "Не похоже на адрес эл. почты.",
            "clients.field.tax_id": "ИНН — от 5 до 20 цифр.",
            "clients.field.tags": "Метки — слова до 50 символов, не больше 30.",
            "clients.field.responsible_id": "Этого сотрудника нельзя назначить ответственным.",
            "clients.field.kind": "Выберите: компания или человек.",
            "clients.field.status": "Выберите статус из списка.",
            "clients.field.outcome": "Выберите результат звонка.",
            "clients.field.comment": "Комментарий слишком длинный.",
            "clients.field.next_step": "Запланируйте следующий шаг: выберите срок.",
            "clients.field.due_at": "Укажите срок: дату и время.",
            "clients.field.title": "Укажите название задачи — от 1 до 300 символов.",
            "clients.field.task_type": "Выберите тип задачи из списка.",
            "clients.field.deal_id": "Эта сделка недоступна.",
            "clients.field.lost_reason": "Укажите причину проигрыша (до 300 символов).",
            "clients.field.stage_id": "Выберите этап из списка.",
            "clients.field.other": "Проверьте поле: {detail}",
        },
        "en": {
            "clients.field.name": "Enter a name of 1 to 300 characters.",
            "clients.field.phones": "This does not look like a phone number.",
            "clients.field.emails": "This does not look like an e-mail address.",
            "clients.field.tax_id": "A tax id has 5 to 20 digits.",
            "clients.field.tags": "Tags are words of up to 50 characters, at most 30 of them.",
            "clients.field.responsible_id": "This user cannot be made responsible.",
            "clients.field.kind": "Choose a company or a person.",
            "clients.field.status": "Choose a status from the list.",
            "clients.field.outcome": "Choose the call's outcome.",
            "clients.field.comment": "The comment is too long.",
            "clients.field.next_step": "Schedule the next step: choose when.",
            "clients.field.due_at": "Enter when: a date and a time.",
            "clients.field.title": "Enter a task title of 1 to 300 characters.",
            "clients.field.task_type": "Choose a task type from the list.",
            "clients.field.deal_id": "That deal is not available.",
            "clients.field.lost_reason": "Enter why the deal was lost (up to 300 characters).",
            "clients.field.stage_id": "Choose a stage from the list.",
            "clients.field.other": "Check this field: {detail}",
        },
    }
)
_KNOWN = (
    "name", "phones", "emails", "tax_id", "tags", "responsible_id", "kind", "status", "outcome", "comment",
    "next_step", "due_at", "title", "task_type", "deal_id", "lost_reason", "stage_id",
)  # fmt: skip


@dataclass
class FieldErrors:
    """Messages by form field. A service names nested fields with dots (``phones.1``,
    ``next_step.due_at``); the form shows each next to its top-level field."""

    messages: dict[str, str]

    @classmethod
    def none(cls) -> FieldErrors:
        return cls({})

    @classmethod
    def of(cls, console: Console, errors: list[FieldError]) -> FieldErrors:
        messages: dict[str, str] = {}
        for error in errors:
            field = error.field.split(".")[0]
            known = field if field in _KNOWN else error.field.split(".")[-1]
            messages.setdefault(field, _message(console, known, error.detail))
        return cls(messages)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def get(self, field: str) -> str | None:
        return self.messages.get(field)


def _message(console: Console, field: str, detail: str) -> str:
    if console.texts.locale == "en":
        return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    if field in _KNOWN:
        return console.texts(f"clients.field.{field}")
    return console.texts("clients.field.other", detail=detail)


def invalid(field: str, detail: str) -> InvalidInput:
    return InvalidInput("The form has invalid fields.", errors=[FieldError(field, detail)])


def parse_when(exact: str, quick: str, zone: ZoneInfo, *, field: str, now: datetime | None = None) -> datetime | None:
    """The moment a form names: ``exact`` (an ``<input type="datetime-local">`` value read in
    the user's zone) wins over ``quick`` (one of QUICK_TIMES); None when both are empty.
    Raises InvalidInput naming ``field`` for a value that is neither."""
    exact, quick = exact.strip(), quick.strip()
    if exact:
        try:
            moment = datetime.fromisoformat(exact)
        except ValueError:
            raise invalid(field, "must be a date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    if not quick:
        return None
    if quick not in QUICK_TIMES:
        raise invalid(field, f"must be one of {', '.join(QUICK_TIMES)}")
    return quick_time(quick, zone, now or datetime.now(UTC))


def quick_time(choice: str, zone: ZoneInfo, now: datetime) -> datetime:
    """A quick choice as a moment: local working times in the user's zone."""
    local = now.astimezone(zone)
    today = local.date()
    if choice == "in_hour":
        return (now + timedelta(hours=1)).astimezone(UTC)
    if choice == "today_evening":
        evening = datetime.combine(today, EVENING, tzinfo=zone)
        # Past six in the evening "this evening" is the next one.
        return (evening if evening > local else evening + timedelta(days=1)).astimezone(UTC)
    days = {"tomorrow": 1, "in_two_days": 2, "next_monday": 7 - today.weekday()}[choice]
    return datetime.combine(today + timedelta(days=days), MORNING, tzinfo=zone).astimezone(UTC)
