"""Settings pages of the console: the company profile here; call outcomes and task types,
pipelines, custom fields, mail and web forms in their own modules, and the plan page — all
collected in :data:`CONTROLLERS`.

Who may see and change them is what the settings API allows: ``settings.read`` to look,
``settings.update`` to change; a user who may only read sees the values without the buttons.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui import (
    admin_billing,
    admin_settings_fields,
    admin_settings_lists,
    admin_settings_mail,
    admin_settings_webforms,
)
from crm.admin_ui import admin_settings_pipelines as pipelines
from crm.admin_ui.admin_forms import after_save, ensure_allowed, field_errors, notice_of, settings_tabs, text
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.platform.errors import InvalidInput
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.configuration.company_api import LOCALES, CompanySettingsUpdate, update_company_settings
from crm.tenants.configuration.settings import company_profile

PATH = "/admin/settings"
FIELDS = ("name", "timezone", "locale", "phone_region")

add_texts(
    {
        "ru": {
            "settings.company.title": "Компания",
            "settings.company.name": "Название компании",
            "settings.company.timezone": "Часовой пояс",
            "settings.company.timezone_hint": "Например, Europe/Moscow. По нему считаются дни и месяцы компании.",
            "settings.company.locale": "Язык по умолчанию",
            "settings.company.phone_region": "Страна телефонных номеров",
            "settings.company.phone_region_hint": "Номера без кода страны, набранные после сохранения, читаются "
            "в этой стране. Уже сохранённые номера не меняются.",
            "settings.locale.ru": "Русский",
            "settings.locale.en": "English",
        },
        "en": {
            "settings.company.title": "Company",
            "settings.company.name": "Company name",
            "settings.company.timezone": "Time zone",
            "settings.company.timezone_hint": "For example Europe/Moscow. The company's days and months follow it.",
            "settings.company.locale": "Default language",
            "settings.company.phone_region": "Country of phone numbers",
            "settings.company.phone_region_hint": "Numbers typed without a country code after saving are read in "
            "this country. Numbers already stored do not change.",
            "settings.locale.ru": "Русский",
            "settings.locale.en": "English",
        },
    }
)


@cache
def timezone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


@cache
def phone_regions() -> tuple[tuple[str, str], ...]:
    """``(code, "RU (+7)")`` for every country phone numbers know, by code."""
    return tuple(
        (code, f"{code} (+{phonenumbers.country_code_for_region(code)})")
        for code in sorted(phonenumbers.SUPPORTED_REGIONS)
    )


async def _company_page(
    console: Console,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response[str]:
    if values is None:
        profile = await read_in_tenant(console.tenant, company_profile)
        values = {field: str(profile.get(field) or "") for field in FIELDS}
    return render(
        console,
        "admin_settings.html",
        status_code=status,
        tabs=settings_tabs(console),
        values=values,
        errors=errors or {},
        notice=notice,
        can_edit=console.may("settings", "update"),
        timezones=timezone_names(),
        regions=phone_regions(),
        locales=[(locale, console.texts(f"settings.locale.{locale}")) for locale in LOCALES],
    )


class CompanySettingsPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def company_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "read")
        return await _company_page(console, notice=notice_of(console, request))

    @post(PATH, opt=PUBLIC)
    async def save_company(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update")
        form = await request.form()
        values = {field: text(form, field) for field in FIELDS}
        try:
            await update_company_settings(console.user, CompanySettingsUpdate(**values), origin=console.origin())
        except InvalidInput as problem:
            return await _company_page(console, values=values, errors=field_errors(problem), status=422)

        async def show(notice: str) -> Response[str]:
            return await _company_page(console, notice=notice)

        return await after_save(console, request, PATH, show)


CONTROLLERS: list[type] = [
    CompanySettingsPageController,
    *admin_settings_lists.CONTROLLERS,
    *pipelines.CONTROLLERS,
    *admin_settings_fields.CONTROLLERS,
    *admin_settings_mail.CONTROLLERS,
    *admin_settings_webforms.CONTROLLERS,
    *admin_billing.CONTROLLERS,
]

register_page(PATH)
