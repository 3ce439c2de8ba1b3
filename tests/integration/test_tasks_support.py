"""Helpers shared by the tasks, planner, activities and dormant-client tests (no tests here).

Client contact times and user settings are read and written directly, the way ``add_staff``
writes users: those areas have APIs of their own, and these tests are about tasks and
activities. Clients and deals are seeded with :mod:`tests.integration.helpers`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm.platform.tenancy import tenant_scope
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.tables import TenantSetting
from crm.tenants.users.tables import User
from tests.conftest import SignedUpTenant
from tests.integration.helpers import tenant_of


async def client_row(company: SignedUpTenant, client_id: int) -> dict[str, Any]:
    async with tenant_scope(await tenant_of(company)):
        row = await Client.select(Client.first_contact_at, Client.last_contact_at).where(Client.id == client_id).first()
    assert row is not None
    return row


async def set_timezone(company: SignedUpTenant, user_id: int, timezone: str) -> None:
    async with tenant_scope(await tenant_of(company)):
        await User.update({User.timezone: timezone}).where(User.id == user_id)


async def set_flag(company: SignedUpTenant, name: str, value: bool) -> None:
    async with tenant_scope(await tenant_of(company)):
        row = (
            await TenantSetting.select(TenantSetting.value)
            .where(TenantSetting.key == "settings")
            .output(load_json=True)
            .first()
        )
        values = {**(row["value"] if row else {}), name: value}
        await TenantSetting.update({TenantSetting.value: values}).where(TenantSetting.key == "settings")


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant ``day`` begins in ``timezone`` (aware, in that zone)."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def local_today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def in_hours(hours: float) -> str:
    """An ISO instant ``hours`` from now, with an offset (+03:00, to show offsets work)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).astimezone(ZoneInfo("Europe/Moscow")).isoformat()


async def audit_actions(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit", headers=auth, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
