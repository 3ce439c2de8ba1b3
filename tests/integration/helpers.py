"""Helpers shared by the integration tests (no tests here).

Clients, deals and tasks are mostly written directly, the way ``add_staff`` writes users,
for tests whose subject is another area: those areas have APIs and tests of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.tables import PipelineStage
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.tables import Task
from tests.conftest import SignedUpTenant


async def tenant_of(company: SignedUpTenant) -> TenantRef:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    return tenant


async def my_id(http: httpx.AsyncClient, auth: dict[str, str]) -> int:
    """The id of the user ``auth`` signs in."""
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
    """A company written directly; its id."""
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
    """A deal written directly, in the first stage of the first pipeline; its id. The
    responsible user is its author too."""
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


async def seed_task(company: SignedUpTenant, client_id: int | None, title: str, assignee_id: int) -> int:
    """An open task written directly, due tomorrow; its id. The assignee is its author too."""
    async with tenant_scope(await tenant_of(company)):
        rows = await Task.insert(
            Task(
                title=title,
                client_id=client_id,
                assignee_id=assignee_id,
                author_id=assignee_id,
                due_at=datetime.now(UTC) + timedelta(days=1),
            )
        ).returning(Task.id)
    return int(rows[0]["id"])


async def create_client(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /api/v1/clients (a person unless ``kind`` says otherwise); asserts 201."""
    response = await http.post("/api/v1/clients", json={"kind": "person", **body}, headers=auth)
    assert response.status_code == 201, response.text
    client: dict[str, Any] = response.json()
    return client
