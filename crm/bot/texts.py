"""What the bot says, in Russian and English (the user's ``locale``; for people the bot
does not know, the language their Telegram app reports)."""

from __future__ import annotations

from typing import Any

LOCALES = ("ru", "en")

_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        # Unknown and deactivated users get the same words: the bot reveals nothing.
        "refused": (
            "Этот бот работает для сотрудников компаний, которые пользуются Relay CRM. "
            "Чтобы подключиться, откройте в CRM свой профиль и нажмите «Подключить Telegram»."
        ),
        "refused.short": "Бот доступен только подключённым сотрудникам.",
        "module.off": "Тариф вашей компании не включает Telegram-бота. Обратитесь к администратору.",
        "link.done": "Готово: Telegram подключён к компании «{company}», вы — {name}. /help — что я умею.",
        "link.invalid": "Ссылка недействительна. Получите новую в CRM: профиль → «Подключить Telegram».",
        "link.expired": (
            "Срок ссылки истёк (она действует 15 минут). Получите новую в CRM: профиль → «Подключить Telegram»."
        ),
        "link.used": "Эта ссылка уже использована. Получите новую в CRM: профиль → «Подключить Telegram».",
        "start.hello": "Здравствуйте, {name}! Вы работаете в компании «{company}». /help — что я умею.",
        "logout.done": "Telegram отключён от компании «{company}».",
        "logout.next": "Теперь вы работаете в компании «{company}».",
        "company.choose": "Выберите компанию для работы (сейчас: «{company}»):",
        "company.switched": "Теперь вы работаете в компании «{company}».",
        "company.gone": "Эта компания больше не подключена.",
        "company.only": (
            "Telegram подключён к одной компании: «{company}». Чтобы добавить другую, "
            "откройте ссылку «Подключить Telegram» в CRM той компании."
        ),
        "help": (
            "Я помогаю работать с клиентами в Relay CRM.\n"
            "/today — задачи на сегодня, /week — на неделю\n"
            "/find ‹имя, телефон, ИНН› — найти клиента (или просто напишите имя)\n"
            "@бот ‹текст› в любом чате — поиск клиента\n"
            "/company — выбрать компанию (если их несколько)\n"
            "/lang — язык\n"
            "/logout — отключить Telegram от текущей компании\n"
            "/help — эта справка"
        ),
        "lang.choose": "Выберите язык:",
        "lang.set": "Язык: русский.",
        "error": "Что-то пошло не так на нашей стороне; мы уже знаем. Попробуйте ещё раз через минуту.",
        "command.start": "Начать",
        "command.today": "Задачи на сегодня",
        "command.week": "Задачи на неделю",
        "command.find": "Найти клиента",
        "command.help": "Справка",
        "command.company": "Выбрать компанию",
        "command.lang": "Язык",
        "command.logout": "Отключить Telegram",
    },
    "en": {
        "refused": (
            "This bot serves the staff of companies that use Relay CRM. "
            "To connect, open your profile in the CRM and choose “Connect Telegram”."
        ),
        "refused.short": "The bot is only available to connected staff.",
        "module.off": "Your company's plan does not include the Telegram bot. Please ask your administrator.",
        "link.done": "Done: Telegram is connected to {company}, as {name}. /help shows what I can do.",
        "link.invalid": "This link is not valid. Get a new one in the CRM: profile → “Connect Telegram”.",
        "link.expired": (
            "This link has expired (links work for 15 minutes). Get a new one in the CRM: profile → “Connect Telegram”."
        ),
        "link.used": "This link has already been used. Get a new one in the CRM: profile → “Connect Telegram”.",
        "start.hello": "Hello, {name}! You are working in {company}. /help shows what I can do.",
        "logout.done": "Telegram is disconnected from {company}.",
        "logout.next": "You are now working in {company}.",
        "company.choose": "Choose the company to work in (now: {company}):",
        "company.switched": "You are now working in {company}.",
        "company.gone": "That company is no longer connected.",
        "company.only": (
            "Telegram is connected to one company: {company}. To add another, "
            "open “Connect Telegram” in that company's CRM."
        ),
        "help": (
            "I help you work with your clients in Relay CRM.\n"
            "/today — today's tasks, /week — the week's\n"
            "/find ‹name, phone, tax id› — find a client (or just type a name)\n"
            "@bot ‹text› in any chat — search clients\n"
            "/company — choose the company (if you have several)\n"
            "/lang — language\n"
            "/logout — disconnect Telegram from the current company\n"
            "/help — this help"
        ),
        "lang.choose": "Choose your language:",
        "lang.set": "Language: English.",
        "error": "Something went wrong on our side; we have been told. Please try again in a minute.",
        "command.start": "Start",
        "command.today": "Today's tasks",
        "command.week": "Tasks for the week",
        "command.find": "Find a client",
        "command.help": "Help",
        "command.company": "Choose the company",
        "command.lang": "Language",
        "command.logout": "Disconnect Telegram",
    },
}

LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


class Texts:
    """The bot's words in one language: ``texts("key", name=…)``."""

    __slots__ = ("locale",)

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in _TEXTS else "en"

    def __call__(self, key: str, **values: Any) -> str:
        return _TEXTS[self.locale][key].format(**values)


def locale_of_telegram(language_code: str | None) -> str:
    """The language for someone the bot does not know yet: their Telegram app's, if ours."""
    code = (language_code or "").split("-")[0].lower()
    return code if code in LOCALES else "en"
