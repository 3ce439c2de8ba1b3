"""Helpers shared by the tasks, planner, activities and dormant-client tests (no tests here).

Clients, deals and user settings are written directly, the way ``add_staff`` writes users:
those areas have APIs of their own, and these tests are about tasks and activities.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.tables import PipelineStage, TenantSetting
from crm.tenants.deals.tables import Deal
from crm.tenants.users.tables import User
from tests.conftest import SignedUpTenant


async def tenant_of(company: SignedUpTenant) -> TenantRef:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    return tenant


async def me_id(http: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await http.get("/api/v1/me", headers=auth)
    assert response.status_code == 200, response.text
    user_id: int = response.json()["user"]["id"]
    return user_id


async def seed_client(
    company: SignedUpTenant,
    name: str,
    *,
    responsible_id: int | None = None,
    author_id: int | None = None,
    status: str = "client",
    created_at: datetime | None = None,
    last_contact_at: datetime | None = None,
) -> int:
    async with tenant_scope(await tenant_of(company)):
        client = Client(
            kind="company",
            name=name,
            phones=[],
            emails=[],
            tags=[],
            status=status,
            responsible_id=responsible_id,
            author_id=author_id,
            last_contact_at=last_contact_at,
        )
        if created_at is not None:
            client.created_at = created_at
        rows = await Client.insert(client).returning(Client.id)
    return int(rows[0]["id"])


async def seed_deal(
    company: SignedUpTenant, client_id: int, *, responsible_id: int | None, title: str = "Поставка"
) -> int:
    async with tenant_scope(await tenant_of(company)):
        stage = (
            await PipelineStage.select(PipelineStage.id, PipelineStage.pipeline_id).order_by(PipelineStage.id).first()
        )
        assert stage is not None
        rows = await Deal.insert(
            Deal(
                title=title,
                client_id=client_id,
                pipeline_id=stage["pipeline_id"],
                stage_id=stage["id"],
                responsible_id=responsible_id,
                author_id=responsible_id,
            )
        ).returning(Deal.id)
    return int(rows[0]["id"])


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
