"""The plan page: the company's edition, its modules, each limit with how much of it is used,
and the editions above it (the upgrade path; paying for one comes with the billing issue).

Usage is counted the way the limits are enforced (:mod:`crm.tenants.configuration.limits`
for users and clients, :mod:`crm.tenants.mailings.quota` for the month's letters), so the
meter reaches its end exactly when adding one more is refused with 402.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from crm.admin_ui.admin_forms import ensure_allowed
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.platform.editions import KNOWN_MODULES, Edition, Limits
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.configuration.limits import COUNTED, quota_used
from crm.tenants.mailings.quota import letters_this_month

PATH = "/admin/billing"
# Limits that are rates or sizes rather than counts of records: shown, not metered.
NOT_METERED = ("running_processes", "storage_mb", "api_requests_per_minute")

add_texts(
    {
        "ru": {
            "billing.title": "Тариф",
            "billing.current": "Ваш тариф: {name}",
            "billing.status.active": "Активен",
            "billing.status.suspended": "Приостановлен",
            "billing.modules": "Что входит",
            "billing.limits": "Лимиты",
            "billing.used": "{used} из {limit}",
            "billing.used_unlimited": "{used}, без ограничений",
            "billing.unlimited": "без ограничений",
            "billing.not_included": "не входит",
            "billing.full": "Лимит исчерпан: новые записи не добавить, пока не смените тариф.",
            "billing.upgrade": "Тарифы выше",
            "billing.top": "У вас самый полный тариф.",
            "billing.adds": "Добавляет",
            "billing.choose": "Перейти на «{name}»",
            "billing.payment_soon": "Смена тарифа онлайн появится вместе с оплатой картой. Пока напишите нам — "
            "переключим вручную.",
            "billing.private": "По запросу",
            "billing.trial": "Пробный период: {days} дн.",
            "billing.limit.users": "Пользователи",
            "billing.limit.clients": "Клиенты",
            "billing.limit.mailings_per_month": "Писем в рассылках за месяц",
            "billing.limit.running_processes": "Запущенных процессов",
            "billing.limit.storage_mb": "Хранилище, МБ",
            "billing.limit.api_requests_per_minute": "Запросов к API в минуту",
            "billing.module.clients": "Клиенты и лиды",
            "billing.module.deals": "Сделки и воронки",
            "billing.module.tasks": "Задачи",
            "billing.module.calls": "Звонки",
            "billing.module.bot": "Telegram-бот",
            "billing.module.mailings": "Рассылки",
            "billing.module.processes": "Бизнес-процессы",
            "billing.module.analytics": "Аналитика",
            "billing.module.webforms": "Веб-формы",
            "billing.module.api": "API",
            "billing.module.custom_fields": "Дополнительные поля",
            "billing.module.audit_export": "Выгрузка журнала",
            "billing.module.import_export": "Импорт и экспорт",
            "billing.module.custom_roles": "Свои роли",
        },
        "en": {
            "billing.title": "Plan",
            "billing.current": "Your plan: {name}",
            "billing.status.active": "Active",
            "billing.status.suspended": "Suspended",
            "billing.modules": "What it includes",
            "billing.limits": "Limits",
            "billing.used": "{used} of {limit}",
            "billing.used_unlimited": "{used}, unlimited",
            "billing.unlimited": "unlimited",
            "billing.not_included": "not included",
            "billing.full": "The limit is reached: nothing more can be added until you change your plan.",
            "billing.upgrade": "Bigger plans",
            "billing.top": "You are on the fullest plan.",
            "billing.adds": "Adds",
            "billing.choose": "Switch to {name}",
            "billing.payment_soon": "Changing plans online comes with card payments. Until then, write to us and "
            "we switch you by hand.",
            "billing.private": "On request",
            "billing.trial": "Trial: {days} days",
            "billing.limit.users": "Users",
            "billing.limit.clients": "Clients",
            "billing.limit.mailings_per_month": "Mailing letters this month",
            "billing.limit.running_processes": "Running processes",
            "billing.limit.storage_mb": "Storage, MB",
            "billing.limit.api_requests_per_minute": "API requests per minute",
            "billing.module.clients": "Clients and leads",
            "billing.module.deals": "Deals and pipelines",
            "billing.module.tasks": "Tasks",
            "billing.module.calls": "Calls",
            "billing.module.bot": "Telegram bot",
            "billing.module.mailings": "Mailings",
            "billing.module.processes": "Business processes",
            "billing.module.analytics": "Analytics",
            "billing.module.webforms": "Web forms",
            "billing.module.api": "API",
            "billing.module.custom_fields": "Custom fields",
            "billing.module.audit_export": "Audit log export",
            "billing.module.import_export": "Import and export",
            "billing.module.custom_roles": "Custom roles",
        },
    }
)


@dataclass(frozen=True)
class Meter:
    """One limit of the edition and, for counted ones, how much of it is used."""

    name: str
    limit: int | None  # None: unlimited
    used: int | None  # None: not metered

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used is not None and self.used >= self.limit


def limit_names() -> tuple[str, ...]:
    return tuple(Limits.__struct_fields__)


async def _usage(edition: Edition) -> dict[str, int]:
    """What the company uses of each counted limit (inside the open tenant scope)."""
    used = {quota: await quota_used(quota) for quota in COUNTED}
    # A company without mailings has none to count (its limit is 0).
    if edition.has_module("mailings"):
        used["mailings_per_month"] = await letters_this_month()
    return used


def meters(edition: Edition, used: dict[str, int]) -> list[Meter]:
    return [
        Meter(name, getattr(edition.limits, name), None if name in NOT_METERED else used.get(name, 0))
        for name in limit_names()
    ]


def _at_least(limit: int | None, than: int | None) -> bool:
    return limit is None or (than is not None and limit >= than)


def is_above(other: Edition, edition: Edition) -> bool:
    """Whether moving to ``other`` loses nothing and gains something: every module kept,
    every limit as high, and a module more or a limit higher (a sibling edition with the
    same modules and limits, sold to another trade, is not "above")."""
    limits = limit_names()
    keeps = set(edition.modules) <= set(other.modules) and all(
        _at_least(getattr(other.limits, name), getattr(edition.limits, name)) for name in limits
    )
    gains = set(other.modules) > set(edition.modules) or any(
        getattr(other.limits, name) != getattr(edition.limits, name) for name in limits
    )
    return keeps and gains


def upgrades(console: Console, edition: Edition) -> list[dict[str, Any]]:
    """The editions above this one, each with the modules it adds and its limits."""
    return [
        {
            "edition": other,
            "adds": [module for module in other.modules if module not in edition.modules],
            "limits": [(name, getattr(other.limits, name)) for name in limit_names()],
        }
        for other in console.services.editions.values()
        if is_above(other, edition)
    ]


class BillingPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def billing_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "billing", "read")
        edition = console.services.editions[console.tenant.edition]
        used = await read_in_tenant(console.tenant, lambda: _usage(edition))
        return render(
            console,
            "admin_billing.html",
            edition=edition,
            modules=[module for module in KNOWN_MODULES if module in edition.modules],
            meters=meters(edition, used),
            upgrades=upgrades(console, edition),
            status=console.tenant.status,
        )


CONTROLLERS: list[type] = [BillingPageController]

register_page(PATH)
