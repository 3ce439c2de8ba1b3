"""What reminder messages and their buttons say, in Russian and English (the recipient's
``locale``). The notice's own title and body come from crm/tenants/notifications/texts.py."""

from __future__ import annotations

from typing import Any

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        "client": "Клиент: {name}",
        "button.done": "✅ Готово",
        "button.snooze.15m": "⏰ 15 мин",
        "button.snooze.1h": "⏰ 1 час",
        "button.snooze.tomorrow": "⏰ Завтра",
        "button.client": "👤 Открыть клиента",
        "done": "✅ Готово: {title}",
        "snoozed": "⏰ Напомню {when}.",
        "task.gone": "Этой задачи уже нет или она вам недоступна.",
        "task.closed": "Задача уже закрыта.",
    },
    "en": {
        "client": "Client: {name}",
        "button.done": "✅ Done",
        "button.snooze.15m": "⏰ 15 min",
        "button.snooze.1h": "⏰ 1 hour",
        "button.snooze.tomorrow": "⏰ Tomorrow",
        "button.client": "👤 Open client",
        "done": "✅ Done: {title}",
        "snoozed": "⏰ I will remind you {when}.",
        "task.gone": "This task is gone or not yours to see.",
        "task.closed": "The task is closed already.",
    },
}


def reminder_text(locale: str, key: str, **values: Any) -> str:
    return _TEXTS.get(locale, _TEXTS["en"])[key].format(**values)
