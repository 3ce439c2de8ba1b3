"""Activities: the next-step rule, call fields, client contact times, rights through the
client, call outcomes as a setting, and two companies that never see each other's calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client, seed_deal, tenant_of
from tests.integration.test_tasks_support import audit_actions, client_row, in_hours, set_flag


async def _log(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await http.post("/api/v1/activities", json=body, headers=auth)


async def _listed(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[int]:
    response = await http.get("/api/v1/activities", headers=auth, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [activity["id"] for activity in response.json()["items"]]


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {error["field"] for error in response.json()["errors"]}


async def test_a_result_that_needs_a_next_step_cannot_be_saved_without_one(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin = await my_id(http, company.auth)
    client = await seed_client(company, "ООО «Ромашка»", responsible_id=admin)
    deal = await seed_deal(company, client, responsible_id=admin)

    call = {"kind": "call", "client_id": client, "deal_id": deal, "direction": "out", "outcome": "interested"}
    refused = await _log(http, company.auth, **call)
    assert _fields(refused) == {"next_step"}
    assert await _listed(http, company.auth) == []
    assert (await http.get("/api/v1/tasks", headers=company.auth)).json()["items"] == []
    assert (await client_row(company, client))["last_contact_at"] is None

    saved = await _log(http, company.auth, **call, comment="Ждут КП", next_step={"due_at": in_hours(24)})
    assert saved.status_code == 201, saved.text
    activity = saved.json()
    assert activity["author_id"] == admin and activity["status"] == "done" and activity["next_task_id"]
    task = (await http.get(f"/api/v1/tasks/{activity['next_task_id']}", headers=company.auth)).json()
    assert task["title"] == "Связаться: ООО «Ромашка»"  # the admin signed up in Russian
    assert (task["task_type"], task["client_id"], task["deal_id"], task["assignee_id"]) == ("call", client, deal, admin)
    contact = await client_row(company, client)
    assert contact["first_contact_at"] == contact["last_contact_at"]
    assert abs(contact["last_contact_at"] - datetime.fromisoformat(activity["occurred_at"])) < timedelta(seconds=1)

    # Outcomes that do not ask for one, notes and planned meetings need no next step.
    not_interested = await _log(http, company.auth, kind="call", client_id=client, outcome="not_interested")
    assert not_interested.status_code == 201 and not_interested.json()["next_task_id"] is None
    assert (
        await _log(http, company.auth, kind="note", client_id=client, comment="Позвонить после 15:00")
    ).status_code == 201
    planned = await _log(
        http, company.auth, kind="meeting", client_id=client, status="planned", occurred_at=in_hours(48)
    )
    assert planned.status_code == 201
    assert _fields(await _log(http, company.auth, kind="meeting", client_id=client)) == {"next_step"}
    # With the company's flag off, the rule is off.
    await set_flag(company, "require_next_step", False)
    relaxed = await _log(http, company.auth, kind="call", client_id=client, outcome="interested")
    assert relaxed.status_code == 201 and relaxed.json()["next_task_id"] is None

    actions = [entry["action"] for entry in await audit_actions(http, company.auth)]
    assert actions.count("activity.created") == 5 and actions.count("task.created") == 1
    created = await audit_actions(http, company.auth, action="activity.created", entity_id=str(activity["id"]))
    assert created[0]["changes"]["outcome"] == [None, "interested"]
    assert created[0]["changes"]["next_task_id"] == [None, activity["next_task_id"]]
    # The other company sees none of it.
    assert await _listed(http, other.auth) == []
    assert (await http.get("/api/v1/tasks", headers=other.auth)).json()["items"] == []
    foreign = await http.get(f"/api/v1/activities/{activity['id']}", headers=other.auth)
    assert foreign.status_code == 404
    assert _fields(await _log(http, other.auth, kind="note", client_id=client)) == {"client_id"}


async def test_every_bad_field_is_named(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    manager = await add_staff(http, company, "anna", role="manager")
    colleague = await add_staff(http, company, "boris", role="manager")
    client = await seed_client(company, "Acme", responsible_id=manager.id)
    hidden = await seed_client(company, "Hidden", responsible_id=colleague.id)
    bad = await _log(
        http,
        manager.auth,
        kind="call",
        client_id=client,
        direction="sideways",
        phone="not a phone",
        duration_seconds=-1,
        outcome="maybe",
        recording_url="ftp://records.example/1.mp3",
        occurred_at="2030-01-01T10:00:00",
        next_step={"due_at": "2030-01-02T10:00:00", "task_type": "dance", "assignee_id": colleague.id},
    )
    assert _fields(bad) == {
        "direction",
        "phone",
        "duration_seconds",
        "outcome",
        "recording_url",
        "occurred_at",
        "next_step.due_at",
        "next_step.task_type",
        "next_step.assignee_id",
    }
    assert _fields(await _log(http, manager.auth, kind="note", client_id=client, direction="in", outcome="x")) == {
        "direction",
        "outcome",
    }
    assert _fields(await _log(http, manager.auth, kind="fax", client_id=hidden, status="lost")) == {
        "kind",
        "client_id",
        "status",
    }
    future = await _log(http, manager.auth, kind="note", client_id=client, occurred_at=in_hours(3))
    assert _fields(future) == {"occurred_at"}
    assert _fields(await _log(http, manager.auth, kind="call", client_id=client)) == {"outcome"}
    assert await _listed(http, manager.auth) == []

    # A good call: the phone is read in the company's region (RU) and stored as E.164.
    good = await _log(
        http,
        manager.auth,
        kind="call",
        client_id=client,
        direction="in",
        phone="8 (912) 345-67-89",
        duration_seconds=95,
        outcome="wrong_number",
        recording_url="https://records.example/calls/1.mp3",
        occurred_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    )
    assert good.status_code == 201, good.text
    assert good.json()["phone"] == "+79123456789" and good.json()["duration_seconds"] == 95


async def test_rights_follow_the_author_and_the_client(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    annas_client = await seed_client(company, "Anna's client", responsible_id=anna.id)
    moved_client = await seed_client(company, "Moves to Boris", responsible_id=anna.id)
    first = (await _log(http, anna.auth, kind="note", client_id=annas_client, comment="first")).json()["id"]
    second = (await _log(http, anna.auth, kind="note", client_id=moved_client, comment="second")).json()["id"]
    assert sorted(await _listed(http, anna.auth)) == sorted([first, second])
    assert await _listed(http, boris.auth) == []
    assert (await http.get(f"/api/v1/activities/{first}", headers=boris.auth)).status_code == 404
    assert (
        await http.patch(f"/api/v1/activities/{first}", json={"comment": "x"}, headers=boris.auth)
    ).status_code == 404
    # Boris cannot log on Anna's client either.
    assert _fields(await _log(http, boris.auth, kind="note", client_id=annas_client)) == {"client_id"}

    # The client goes to Boris: Anna, still the author, no longer reads the client, so not its notes.
    async def reassign() -> None:
        from crm.platform.tenancy import tenant_scope
        from crm.tenants.clients.tables import Client

        async with tenant_scope(await tenant_of(company)):
            await Client.update({Client.responsible_id: boris.id}).where(Client.id == moved_client)

    await reassign()
    assert await _listed(http, anna.auth) == [first]
    assert (await http.get(f"/api/v1/activities/{second}", headers=anna.auth)).status_code == 404
    # Boris reads the client now, but the note is Anna's (activities: own).
    assert await _listed(http, boris.auth) == []
    # The admin sees everything; managers may not delete activities, the admin may.
    assert sorted(await _listed(http, company.auth)) == sorted([first, second])
    assert (await http.delete(f"/api/v1/activities/{first}", headers=anna.auth)).status_code == 403
    assert (await http.delete(f"/api/v1/activities/{first}", headers=company.auth)).status_code == 204
    assert await _listed(http, company.auth) == [second]
    assert await _listed(http, other.auth) == []
    deleted = await audit_actions(http, company.auth, action="activity.deleted")
    assert [entry["entity_id"] for entry in deleted] == [str(first)]


async def test_a_planned_call_is_completed_with_its_result(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    client = await seed_client(company, "Planned Ltd")
    planned = await _log(http, company.auth, kind="call", client_id=client, status="planned", occurred_at=in_hours(2))
    assert planned.status_code == 201, planned.text
    path = f"/api/v1/activities/{planned.json()['id']}"
    now = datetime.now(UTC).isoformat()

    missing = await http.patch(path, json={"status": "done", "occurred_at": now}, headers=company.auth)
    assert _fields(missing) == {"outcome"}
    no_step = await http.patch(
        path, json={"status": "done", "outcome": "call_back", "occurred_at": now}, headers=company.auth
    )
    assert _fields(no_step) == {"next_step"}
    assert (await client_row(company, client))["last_contact_at"] is None
    done = await http.patch(
        path,
        json={
            "status": "done",
            "outcome": "call_back",
            "occurred_at": now,
            "next_step": {"due_at": in_hours(26), "title": "Перезвонить после обеда"},
        },
        headers=company.auth,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["next_task_id"]
    task = (await http.get(f"/api/v1/tasks/{done.json()['next_task_id']}", headers=company.auth)).json()
    assert task["title"] == "Перезвонить после обеда" and task["client_id"] == client
    assert (await client_row(company, client))["last_contact_at"] is not None
    back = await http.patch(path, json={"status": "planned"}, headers=company.auth)
    assert _fields(back) == {"status"}
    comment = await http.patch(path, json={"comment": "Просили счёт"}, headers=company.auth)
    assert comment.status_code == 200 and comment.json()["comment"] == "Просили счёт"
    updated = await audit_actions(http, company.auth, action="activity.updated")
    assert updated[-1]["changes"]["status"] == ["planned", "done"]
    assert (await http.patch(path, json={"comment": "x"}, headers=other.auth)).status_code == 404


async def test_list_filters_and_order(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    first, second = await seed_client(company, "One"), await seed_client(company, "Two")
    base = datetime.now(UTC) - timedelta(days=3)
    ids = []
    for hours, client, kind in ((0, first, "note"), (1, second, "email"), (2, first, "email"), (3, first, "note")):
        response = await _log(
            http, company.auth, kind=kind, client_id=client, occurred_at=(base + timedelta(hours=hours)).isoformat()
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    assert await _listed(http, company.auth) == ids[::-1]  # newest first
    assert await _listed(http, company.auth, sort="occurred_at") == ids
    assert await _listed(http, company.auth, client_id=first) == [ids[3], ids[2], ids[0]]
    assert await _listed(http, company.auth, kind="email") == [ids[2], ids[1]]
    window = {
        "occurred_at_from": (base + timedelta(hours=1)).isoformat(),
        "occurred_at_to": (base + timedelta(hours=3)).isoformat(),
    }
    assert await _listed(http, company.auth, **window) == [ids[2], ids[1]]
    assert await _listed(http, other.auth) == []
    # The first client's last contact is the latest of its activities.
    last = (await client_row(company, first))["last_contact_at"]
    assert abs(last - (base + timedelta(hours=3))) < timedelta(seconds=1)


async def test_call_outcomes_are_a_company_setting(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    manager = await add_staff(http, company, "anna", role="manager")
    seeded = await http.get("/api/v1/settings/call-outcomes", headers=company.auth)
    assert seeded.status_code == 200
    assert {outcome["key"] for outcome in seeded.json()} >= {"interested", "no_answer", "wrong_number"}
    assert (await http.get("/api/v1/settings/call-outcomes", headers=manager.auth)).status_code == 403

    outcomes = [
        {"key": "sold", "names": {"ru": "Продано", "en": "Sold"}, "requires_next_step": True},
        {"key": "thinking", "names": {"ru": "Думает", "en": "Thinking it over"}, "requires_next_step": False},
    ]
    replaced = await http.put("/api/v1/settings/call-outcomes", json=outcomes, headers=company.auth)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == outcomes
    assert (await http.get("/api/v1/settings/call-outcomes", headers=company.auth)).json() == outcomes
    refused = await http.put("/api/v1/settings/call-outcomes", json=outcomes, headers=manager.auth)
    assert refused.status_code == 403
    bad = await http.put(
        "/api/v1/settings/call-outcomes",
        json=[outcomes[0], {**outcomes[0], "names": {"ru": "", "en": "x"}}, {**outcomes[1], "key": "Bad Key"}],
        headers=company.auth,
    )
    assert _fields(bad) == {"1.key", "1.names.ru", "2.key"}
    assert _fields(await http.put("/api/v1/settings/call-outcomes", json=[], headers=company.auth)) == {"body"}

    client = await seed_client(company, "Outcomes", responsible_id=manager.id)
    assert _fields(await _log(http, manager.auth, kind="call", client_id=client, outcome="interested")) == {"outcome"}
    assert _fields(await _log(http, manager.auth, kind="call", client_id=client, outcome="sold")) == {"next_step"}
    thinking = await _log(http, manager.auth, kind="call", client_id=client, outcome="thinking")
    assert thinking.status_code == 201
    # The other company keeps the edition's outcomes.
    assert {o["key"] for o in (await http.get("/api/v1/settings/call-outcomes", headers=other.auth)).json()} >= {
        "interested"
    }
    audit = await audit_actions(http, company.auth, action="settings.call_outcomes_updated")
    assert len(audit) == 1 and audit[0]["changes"]["call_outcomes"][1] == outcomes
