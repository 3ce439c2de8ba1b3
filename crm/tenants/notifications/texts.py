"""What notifications say, in the recipient's language (users.locale: ru or en)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from crm.tenants.notifications.channels import Notice
from crm.tenants.notifications.recipients import Recipient
from crm.tenants.reminders.schedule import zone_of

DIGEST_LINES = 20  # tasks named in a digest; the counts cover all

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "reminder.title": "Напоминание: {title}",
        "reminder.body": "Срок: {due}",
        "snooze.body": "Отложенное напоминание. Срок: {due}",
        "digest.title": "Задачи на {day}: сегодня {today}, просрочено {overdue}",
        "digest.today": "Сегодня:",
        "digest.overdue": "Просрочено:",
        "digest.more": "… и ещё {count}",
        "birthday.title": "День рождения: {name}",
        "birthday.client": "Сегодня день рождения у вашего клиента {name}.",
        "birthday.user": "Сегодня день рождения у сотрудника {name}.",
        "lead.title": "Новая заявка с сайта: {name}",
        "lead.body": "Форма «{form}».",
    },
    "en": {
        "reminder.title": "Reminder: {title}",
        "reminder.body": "Due: {due}",
        "snooze.body": "Snoozed reminder. Due: {due}",
        "digest.title": "Tasks for {day}: {today} today, {overdue} overdue",
        "digest.today": "Today:",
        "digest.overdue": "Overdue:",
        "digest.more": "… and {count} more",
        "birthday.title": "Birthday: {name}",
        "birthday.client": "Your client {name} has a birthday today.",
        "birthday.user": "Your colleague {name} has a birthday today.",
        "lead.title": "New lead from the website: {name}",
        "lead.body": "Form “{form}”.",
    },
}


def text(user: Recipient, key: str, **values: Any) -> str:
    return _TEXTS.get(user.locale, _TEXTS["en"])[key].format(**values)


def local_time(user: Recipient, moment: datetime) -> str:
    """``moment`` on the user's clock, written the way their language writes it."""
    return _local_time(moment, user.timezone, user.locale)


# The same few moments recur in a burst (every "10:00" task of a company reminds at 09:45),
# and the zone conversion and formatting were most of the Python time of a reminder.
@lru_cache(maxsize=4096)
def _local_time(moment: datetime, timezone: str, locale: str) -> str:
    local = moment.astimezone(zone_of(timezone))
    return local.strftime("%d.%m.%Y %H:%M" if locale == "ru" else "%Y-%m-%d %H:%M")


def local_day(user: Recipient, day: date) -> str:
    return day.strftime("%d.%m.%Y" if user.locale == "ru" else "%Y-%m-%d")


def reminder_notice(user: Recipient, task: dict[str, Any], *, snoozed: bool = False) -> Notice:
    due = local_time(user, task["due_at"])
    return Notice(
        kind="task_reminder",
        title=text(user, "reminder.title", title=task["title"]),
        body=text(user, "snooze.body" if snoozed else "reminder.body", due=due),
        entity="task",
        entity_id=task["id"],
    )


def _task_lines(user: Recipient, tasks: Sequence[dict[str, Any]]) -> list[str]:
    lines = [f"- {local_time(user, task['due_at'])} {task['title']}" for task in tasks[:DIGEST_LINES]]
    if len(tasks) > DIGEST_LINES:
        lines.append(text(user, "digest.more", count=len(tasks) - DIGEST_LINES))
    return lines


def digest_notice(
    user: Recipient, day: date, today: Sequence[dict[str, Any]], overdue: Sequence[dict[str, Any]]
) -> Notice:
    lines: list[str] = []
    for key, tasks in (("digest.today", today), ("digest.overdue", overdue)):
        if tasks:
            lines += [text(user, key), *_task_lines(user, tasks)]
    return Notice(
        kind="digest",
        title=text(user, "digest.title", day=local_day(user, day), today=len(today), overdue=len(overdue)),
        body="\n".join(lines),
    )


def birthday_notice(user: Recipient, *, name: str, entity: str, entity_id: int) -> Notice:
    return Notice(
        kind="birthday",
        title=text(user, "birthday.title", name=name),
        body=text(user, "birthday.client" if entity == "client" else "birthday.user", name=name),
        entity=entity,
        entity_id=entity_id,
    )


def web_lead_notice(user: Recipient, *, name: str, form: str, contacts: Sequence[str], lead_id: int) -> Notice:
    """A lead a web form just brought in, for its responsible user."""
    body = " ".join([text(user, "lead.body", form=form), *contacts])
    return Notice(
        kind="web_lead", title=text(user, "lead.title", name=name), body=body, entity="lead", entity_id=lead_id
    )
