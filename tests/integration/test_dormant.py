"""Dormant clients: who counts as dormant, who may see them, and call tasks in bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm.platform.tenancy import tenant_scope
from crm.tenants.users.tables import User
from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client, tenant_of
from tests.integration.test_tasks_support import audit_actions, in_hours


async def _dormant(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/clients/dormant", headers=auth, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_dormant_clients_are_those_nobody_contacted(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    now = datetime.now(UTC)
    silent = await seed_client(company, "Silent", responsible_id=anna.id, last_contact_at=now - timedelta(days=45))
    recent = await seed_client(company, "Recent", responsible_id=anna.id, last_contact_at=now - timedelta(days=5))
    never = await seed_client(company, "Never called", responsible_id=anna.id, created_at=now - timedelta(days=60))
    new = await seed_client(company, "Brand new", responsible_id=anna.id)
    former = await seed_client(
        company, "Former", status="former", responsible_id=anna.id, last_contact_at=now - timedelta(days=90)
    )
    admins = await seed_client(company, "Admin's", last_contact_at=now - timedelta(days=400))
    await seed_client(other, "Other company's", last_contact_at=now - timedelta(days=400))

    listed = await _dormant(http, company.auth, days=30)
    assert [client["id"] for client in listed] == [silent, never, former, admins]
    by_id = {client["id"]: client for client in listed}
    assert by_id[silent]["days_since_last_contact"] == 45
    assert by_id[never]["days_since_last_contact"] is None and by_id[never]["last_contact_at"] is None
    assert {client["id"] for client in await _dormant(http, company.auth, days=50)} == {never, former, admins}
    assert [client["id"] for client in await _dormant(http, company.auth, days=30, status="former")] == [former]
    assert recent not in by_id and new not in by_id
    # A manager sees only their own clients; the other company only its own.
    assert {client["id"] for client in await _dormant(http, anna.auth, days=30)} == {silent, never, former}
    assert [client["name"] for client in await _dormant(http, other.auth, days=30)] == ["Other company's"]
    # Pages and sort work like every list.
    first = (
        await http.get("/api/v1/clients/dormant", headers=company.auth, params={"limit": 2, "sort": "name"})
    ).json()
    assert [client["name"] for client in first["items"]] == ["Admin's", "Former"] and first["next_cursor"]
    assert (await http.get("/api/v1/clients/dormant", headers=company.auth, params={"days": 0})).status_code in (
        400,
        422,
    )


async def test_call_tasks_for_dormant_clients(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin = await my_id(http, company.auth)
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    leaver = await add_staff(http, company, "leaver", role="manager")
    long_ago = datetime.now(UTC) - timedelta(days=100)
    annas = await seed_client(company, "Anna's", responsible_id=anna.id, last_contact_at=long_ago)
    boris_one = await seed_client(company, "Boris's", responsible_id=boris.id, last_contact_at=long_ago)
    busy = await seed_client(company, "Already planned", responsible_id=boris.id, last_contact_at=long_ago)
    orphan = await seed_client(company, "Nobody's", last_contact_at=long_ago)
    left = await seed_client(company, "Leaver's", responsible_id=leaver.id, last_contact_at=long_ago)
    authored = await seed_client(
        company, "Anna wrote it", responsible_id=boris.id, author_id=anna.id, last_contact_at=long_ago
    )
    await seed_client(other, "Elsewhere", responsible_id=None, last_contact_at=long_ago)
    async with tenant_scope(await tenant_of(company)):
        await User.update({User.is_active: False}).where(User.id == leaver.id)
    existing = await http.post(
        "/api/v1/tasks",
        json={"title": "Call", "due_at": in_hours(5), "client_id": busy, "assignee_id": boris.id},
        headers=company.auth,
    )
    assert existing.status_code == 201, existing.text

    # Anna (own scope, no assign right) reads her client and the one she authored (Boris's).
    own = await http.post(
        "/api/v1/clients/dormant/call-tasks", json={"days": 30, "due_at": in_hours(24)}, headers=anna.auth
    )
    assert own.status_code == 200, own.text
    assert own.json()["created"] == 1 and own.json()["skipped_by_reason"] == {"not_assignable": 1}

    bad = await http.post(
        "/api/v1/clients/dormant/call-tasks",
        json={"days": 0, "due_at": "2030-01-01T10:00:00", "title": "x" * 301},
        headers=company.auth,
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"days", "due_at", "title"}

    result = await http.post(
        "/api/v1/clients/dormant/call-tasks",
        json={"days": 30, "due_at": "2030-06-01T10:00:00+03:00", "title": "Позвонить: {client}"},
        headers=company.auth,
    )
    assert result.status_code == 200, result.text
    body = result.json()
    # Anna's client got its task from Anna's own run; the admin's run adds Boris's two.
    assert body["created"] == 2 and body["remaining"] == 0
    assert body["skipped_by_reason"] == {"no_responsible": 2, "open_task": 2}
    assert body["skipped"] == 4
    tasks = (await http.get("/api/v1/tasks", headers=company.auth, params={"limit": 200})).json()["items"]
    made = {task["client_id"]: task for task in tasks if task["id"] in body["task_ids"]}
    assert set(made) == {boris_one, authored}
    assert made[boris_one]["assignee_id"] == boris.id and made[boris_one]["title"] == "Позвонить: Boris's"
    assert made[boris_one]["task_type"] == "call" and made[boris_one]["due_at"] == "2030-06-01T07:00:00Z"
    assert made[boris_one]["author_id"] == admin
    assert {task["client_id"] for task in tasks} == {annas, boris_one, busy, authored}
    assert orphan not in made and left not in made
    # Run again: every dormant client now has an open task.
    again = (
        await http.post(
            "/api/v1/clients/dormant/call-tasks", json={"days": 30, "due_at": in_hours(24)}, headers=company.auth
        )
    ).json()
    assert again["created"] == 0
    created = await audit_actions(http, company.auth, action="task.created")
    assert {entry["entity_id"] for entry in created} >= {str(task_id) for task_id in body["task_ids"]}
    assert (await http.get("/api/v1/tasks", headers=other.auth)).json()["items"] == []
