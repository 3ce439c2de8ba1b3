"""The console's words in Russian and English.

Each area of the console keeps its words next to its pages and adds them here with
:func:`add_texts` at import, so areas can grow without touching one shared file. A key
missing in one language is an error at import, not a blank on a page.
"""

from __future__ import annotations

from typing import Any

LOCALES = ("ru", "en")
_TEXTS: dict[str, dict[str, str]] = {locale: {} for locale in LOCALES}


def add_texts(texts: dict[str, dict[str, str]]) -> None:
    """Add an area's words: ``{"ru": {key: text}, "en": {key: text}}``, the same keys in both."""
    keys = {locale: set(texts.get(locale, {})) for locale in LOCALES}
    if keys["ru"] != keys["en"]:
        raise ValueError(f"console texts differ between languages: {sorted(keys['ru'] ^ keys['en'])}")
    for locale in LOCALES:
        clash = keys[locale] & set(_TEXTS[locale])
        if clash:
            raise ValueError(f"console texts defined twice: {sorted(clash)}")
        _TEXTS[locale].update(texts[locale])


def locale_of(value: str | None) -> str:
    """One of LOCALES for a user's locale or an Accept-Language header (English by default)."""
    for part in (value or "").replace(" ", "").split(","):
        language = part.split(";")[0].split("-")[0].split("_")[0].lower()
        if language in LOCALES:
            return language
    return "en"


class Texts:
    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LOCALES else "en"

    def __call__(self, key: str, **values: Any) -> str:
        text = _TEXTS[self.locale].get(key)
        if text is None:
            raise KeyError(f"no console text {key!r}")
        return text.format(**values) if values else text


add_texts(
    {
        "ru": {
            "app.name": "Relay CRM",
            "nav.dashboard": "Сегодня",
            "nav.clients": "Клиенты",
            "nav.deals": "Сделки",
            "nav.tasks": "Задачи",
            "nav.planner": "Планировщик",
            "nav.mailings": "Рассылки",
            "nav.import": "Импорт",
            "nav.admin": "Управление",
            "nav.users": "Пользователи",
            "nav.departments": "Отделы",
            "nav.roles": "Роли и права",
            "nav.audit": "Журнал",
            "nav.billing": "Тариф",
            "nav.settings": "Настройки",
            "nav.telegram": "Telegram",
            "nav.menu": "Меню",
            "nav.skip": "К содержимому",
            "account.logout": "Выйти",
            "account.logout_all": "Выйти на всех устройствах",
            "login.title": "Вход в {company}",
            "login.email": "Эл. почта",
            "login.password": "Пароль",
            "login.totp": "Код из приложения (если включён)",
            "login.submit": "Войти",
            "login.forgot": "Забыли пароль?",
            "login.failed": "Неверная эл. почта или пароль.",
            "login.totp_required": "Введите код из приложения-аутентификатора.",
            "login.locked": "Слишком много неудачных попыток. Попробуйте через {seconds} с.",
            "login.inactive": "Учётная запись компании приостановлена.",
            "login.signed_out": "Вы вышли.",
            "login.expired": "Сессия закончилась — войдите снова.",
            "forgot.title": "Восстановление пароля",
            "forgot.intro": "Укажите эл. почту — пришлём ссылку для нового пароля.",
            "forgot.submit": "Прислать ссылку",
            "forgot.sent": "Если такая учётная запись есть, письмо со ссылкой уже в пути. Ссылка действует час.",
            "reset.title": "Новый пароль",
            "reset.submit": "Сохранить пароль",
            "reset.done": "Пароль сменён. Войдите с новым паролем.",
            "reset.bad_link": "Ссылка недействительна или устарела. Запросите новую.",
            "error.csrf": "Форма устарела. Обновите страницу и попробуйте снова.",
            "error.not_found": "Страница не найдена.",
            "error.forbidden": "Ваша роль не позволяет это сделать.",
            "error.module": "Этого раздела нет в вашем тарифе.",
            "error.invalid": "Проверьте поля формы.",
            "error.rate": "Слишком много запросов. Попробуйте через минуту.",
            "common.save": "Сохранить",
            "common.cancel": "Отмена",
            "common.search": "Поиск",
            "common.none": "Пока ничего нет.",
            "common.more": "Ещё",
            "common.back": "Назад",
            "common.saved": "Сохранено.",
        },
        "en": {
            "app.name": "Relay CRM",
            "nav.dashboard": "Today",
            "nav.clients": "Clients",
            "nav.deals": "Deals",
            "nav.tasks": "Tasks",
            "nav.planner": "Planner",
            "nav.mailings": "Mailings",
            "nav.import": "Import",
            "nav.admin": "Admin",
            "nav.users": "Users",
            "nav.departments": "Departments",
            "nav.roles": "Roles and rights",
            "nav.audit": "Audit log",
            "nav.billing": "Plan",
            "nav.settings": "Settings",
            "nav.telegram": "Telegram",
            "nav.menu": "Menu",
            "nav.skip": "Skip to content",
            "account.logout": "Sign out",
            "account.logout_all": "Sign out everywhere",
            "login.title": "Sign in to {company}",
            "login.email": "E-mail",
            "login.password": "Password",
            "login.totp": "Authenticator code (if enabled)",
            "login.submit": "Sign in",
            "login.forgot": "Forgot your password?",
            "login.failed": "Wrong e-mail or password.",
            "login.totp_required": "Enter the code from your authenticator app.",
            "login.locked": "Too many failed attempts. Try again in {seconds} s.",
            "login.inactive": "The company account is suspended.",
            "login.signed_out": "You are signed out.",
            "login.expired": "Your session has ended; please sign in again.",
            "forgot.title": "Reset your password",
            "forgot.intro": "Enter your e-mail and we will send a link to choose a new password.",
            "forgot.submit": "Send the link",
            "forgot.sent": "If the account exists, a message with a link is on its way. The link works for an hour.",
            "reset.title": "Choose a new password",
            "reset.submit": "Save the password",
            "reset.done": "Your password is changed. Sign in with the new one.",
            "reset.bad_link": "The link is invalid or has expired. Ask for a new one.",
            "error.csrf": "The form has expired. Reload the page and try again.",
            "error.not_found": "Page not found.",
            "error.forbidden": "Your role does not allow this.",
            "error.module": "This section is not part of your plan.",
            "error.invalid": "Please check the form's fields.",
            "error.rate": "Too many requests. Try again in a minute.",
            "common.save": "Save",
            "common.cancel": "Cancel",
            "common.search": "Search",
            "common.none": "Nothing here yet.",
            "common.more": "More",
            "common.back": "Back",
            "common.saved": "Saved.",
        },
    }
)
