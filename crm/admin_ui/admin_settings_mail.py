"""The mail settings page: the sender name and address of the company's mail and its
mailing rate, through the service the mail settings API uses. A field left empty returns
to the product's default (shown as the placeholder)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.admin_forms import after_save, ensure_allowed, field_errors, notice_of, settings_tabs, text
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.texts import add_texts
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.mail import current_mail
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.configuration.settings import setting
from crm.tenants.mail.sender import (
    DEFAULT_RATE_PER_MINUTE,
    MAX_RATE_PER_MINUTE,
    SETTING,
    MailSettingsUpdate,
    update_mail_settings,
)

PATH = "/admin/settings/mail"
FIELDS = ("from_name", "from_address", "rate_per_minute")

add_texts(
    {
        "ru": {
            "settings.mail.title": "Почта",
            "settings.mail.intro": "От чьего имени уходят письма компании: приглашения, напоминания, рассылки. "
            "Пустое поле — значение по умолчанию.",
            "settings.mail.from_name": "Имя отправителя",
            "settings.mail.from_address": "Адрес отправителя",
            "settings.mail.from_address_hint": "Домен адреса должен разрешать отправку с нашего сервера "
            "(SPF/DKIM), иначе письма попадут в спам.",
            "settings.mail.rate": "Писем в минуту (рассылки)",
            "settings.mail.rate_hint": "От 1 до {max}. По умолчанию {default}.",
            "settings.mail.number": "Нужно целое число.",
        },
        "en": {
            "settings.mail.title": "Mail",
            "settings.mail.intro": "Who the company's mail comes from: invitations, reminders, mailings. "
            "An empty field is the default.",
            "settings.mail.from_name": "Sender name",
            "settings.mail.from_address": "Sender address",
            "settings.mail.from_address_hint": "The address's domain must allow our server to send for it "
            "(SPF/DKIM), or the mail lands in spam.",
            "settings.mail.rate": "Letters per minute (mailings)",
            "settings.mail.rate_hint": "1 to {max}. {default} by default.",
            "settings.mail.number": "Must be a whole number.",
        },
    }
)


async def _page(
    console: Console,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response[str]:
    if values is None:
        # What the company set (empty: the default), not the effective sender.
        stored: dict[str, Any] = await read_in_tenant(console.tenant, lambda: setting(SETTING, {}))
        values = {field: "" if stored.get(field) is None else str(stored[field]) for field in FIELDS}
    default = current_mail().default_sender
    return render(
        console,
        "admin_settings_mail.html",
        status_code=status,
        tabs=settings_tabs(console),
        values=values,
        errors=errors or {},
        notice=notice,
        can_edit=console.may("settings", "update"),
        default_name=default.name,
        default_address=default.address,
        default_rate=DEFAULT_RATE_PER_MINUTE,
        max_rate=MAX_RATE_PER_MINUTE,
    )


class MailSettingsPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def mail_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "read")
        return await _page(console, notice=notice_of(console, request))

    @post(PATH, opt=PUBLIC)
    async def save_mail(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update")
        form = await request.form()
        values = {field: text(form, field) for field in FIELDS}
        try:
            rate = values["rate_per_minute"]
            if rate and not rate.isdigit():
                message = console.texts("settings.mail.number")
                raise InvalidInput(message, errors=[FieldError("rate_per_minute", message)])
            data = MailSettingsUpdate(
                from_name=values["from_name"] or None,
                from_address=values["from_address"] or None,
                rate_per_minute=int(rate) if rate else None,
            )
            await update_mail_settings(console.user, data, origin=console.origin())
        except InvalidInput as problem:
            return await _page(console, values=values, errors=field_errors(problem), status=422)

        async def show(notice: str) -> Response[str]:
            return await _page(console, notice=notice)

        return await after_save(console, request, PATH, show)


CONTROLLERS: list[type] = [MailSettingsPageController]
