"""Tasks: the fixed create shape, validation, rights, audit, views in the caller's day,
recurrence, and two companies that never see each other's tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client, seed_deal
from tests.integration.test_tasks_support import audit_actions, in_hours, iso, local_midnight, local_today, set_timezone


async def _task(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/tasks", json=body, headers=auth)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def _ids(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[int]:
    response = await http.get("/api/v1/tasks", headers=auth, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["items"]]


async def test_title_and_due_at_make_a_task_for_the_caller(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant(edition="start")
    admin = await my_id(http, company.auth)
    await set_timezone(company, admin, "Asia/Vladivostok")
    client = await seed_client(company, "ООО «Ромашка»", responsible_id=admin)

    task = await _task(http, company.auth, title="Позвонить в «Ромашку»", due_at="2030-03-25T10:00:00+03:00")
    assert task["assignee_id"] == admin and task["author_id"] == admin and task["status"] == "open"
    assert task["due_at"] == "2030-03-25T07:00:00Z"
    assert task["due_at_local"] == "2030-03-25T17:00:00+10:00" and task["assignee_timezone"] == "Asia/Vladivostok"
    assert task["priority"] == "normal" and task["checklist"] == [] and task["remind_before_minutes"] == []

    full = await _task(
        http,
        company.auth,
        title="Send the proposal",
        due_at="2030-03-26T09:00:00Z",
        client_id=client,
        remind_before_minutes=[60, 15, 60, 1440],
        description="Prices for Q2",
        task_type="send_documents",
        priority="high",
        checklist=[{"text": "Draft"}, {"text": "Approve", "done": True}],
    )
    assert full["client_id"] == client and full["remind_before_minutes"] == [15, 60, 1440]
    assert full["checklist"] == [{"text": "Draft", "done": False}, {"text": "Approve", "done": True}]
    assert (await http.get(f"/api/v1/tasks/{full['id']}", headers=company.auth)).json() == full

    # The other company has no such tasks; its own ids start from 1 as well.
    assert await _ids(http, other.auth) == []
    assert (await http.get(f"/api/v1/tasks/{full['id']}", headers=other.auth)).status_code == 404
    own = await _task(http, other.auth, title="Other company", due_at="2030-03-25T10:00:00+00:00")
    assert await _ids(http, other.auth) == [own["id"]]
    assert sorted(await _ids(http, company.auth)) == sorted([task["id"], full["id"]])
    # A client of the first company does not exist for the second.
    cross = await http.post(
        "/api/v1/tasks", json={"title": "x", "due_at": "2030-01-01T00:00:00Z", "client_id": client}, headers=other.auth
    )
    if client != own["id"]:
        assert cross.status_code == 422 and cross.json()["errors"][0]["field"] == "client_id"

    created = await audit_actions(http, company.auth, action="task.created")
    assert {entry["entity_id"] for entry in created} == {str(task["id"]), str(full["id"])}
    entry = next(entry for entry in created if entry["entity_id"] == str(full["id"]))
    assert entry["changes"]["title"] == [None, "Send the proposal"] and entry["changes"]["client_id"] == [None, client]


async def test_every_bad_field_is_named_and_nothing_is_written(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company = await make_tenant()
    stranger = await add_staff(http, company, "stranger", role="manager")
    hidden = await seed_client(company, "Чужой клиент", responsible_id=stranger.id, author_id=stranger.id)
    response = await http.post(
        "/api/v1/tasks",
        json={
            "title": " ",
            "due_at": "2030-03-25T10:00:00",
            "task_type": "dance",
            "priority": "urgent",
            "remind_before_minutes": [10, -5, 50000],
            "checklist": [{"text": "ok"}, {"text": ""}],
            "rrule": "FREQ=DAILY;COUNT=3",
            "client_id": 999999,
            "deal_id": 999999,
        },
        headers=company.auth,
    )
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {
        "title",
        "due_at",
        "task_type",
        "priority",
        "remind_before_minutes.1",
        "remind_before_minutes.2",
        "checklist.1.text",
        "rrule",
        "client_id",
        "deal_id",
    }
    too_many = await http.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": "2030-03-25T10:00:00Z", "remind_before_minutes": list(range(11))},
        headers=company.auth,
    )
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "remind_before_minutes"
    unknown = await http.post(
        "/api/v1/tasks", json={"title": "x", "due_at": "2030-03-25T10:00:00Z", "colour": 1}, headers=company.auth
    )
    assert unknown.status_code in (400, 422)
    assert await _ids(http, company.auth) == []
    # A manager (own scope) may not link a client they cannot read, nor assign to a colleague.
    manager = await add_staff(http, company, "manager", role="manager")
    refused = await http.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": "2030-03-25T10:00:00Z", "client_id": hidden, "assignee_id": stranger.id},
        headers=manager.auth,
    )
    assert refused.status_code == 422
    assert {error["field"] for error in refused.json()["errors"]} == {"client_id", "assignee_id"}
    # The admin may do both.
    ok = await _task(
        http, company.auth, title="x", due_at="2030-03-25T10:00:00Z", client_id=hidden, assignee_id=stranger.id
    )
    assert ok["assignee_id"] == stranger.id
    # A deal of another client does not go with this client.
    other_client = await seed_client(company, "Другой")
    deal = await seed_deal(company, other_client, responsible_id=None)
    mismatch = await http.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": "2030-03-25T10:00:00Z", "client_id": hidden, "deal_id": deal},
        headers=company.auth,
    )
    assert mismatch.status_code == 422 and mismatch.json()["errors"][0]["field"] == "deal_id"


async def test_a_manager_sees_and_changes_only_own_tasks(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    mine = await _task(http, anna.auth, title="Anna's call", due_at=in_hours(5))
    theirs = await _task(http, boris.auth, title="Boris's call", due_at=in_hours(5))
    # The admin assigned one to Anna: she is its assignee, so it is hers too.
    given = await _task(http, company.auth, title="From the boss", due_at=in_hours(6), assignee_id=anna.id)

    assert sorted(await _ids(http, anna.auth)) == sorted([mine["id"], given["id"]])
    assert await _ids(http, anna.auth, assignee_id=boris.id) == []
    for method, path, body in (
        ("GET", f"/api/v1/tasks/{theirs['id']}", None),
        ("PATCH", f"/api/v1/tasks/{theirs['id']}", {"title": "Mine now"}),
        ("POST", f"/api/v1/tasks/{theirs['id']}/complete", None),
        ("DELETE", f"/api/v1/tasks/{theirs['id']}", None),
    ):
        response = await http.request(method, path, json=body, headers=anna.auth)
        assert response.status_code == 404, (method, path, response.text)
    assert (await http.get(f"/api/v1/tasks/{theirs['id']}", headers=boris.auth)).json()["status"] == "open"
    # Handing one's own task to a colleague needs tasks.assign, which managers lack.
    handover = await http.patch(f"/api/v1/tasks/{mine['id']}", json={"assignee_id": boris.id}, headers=anna.auth)
    assert handover.status_code == 422 and handover.json()["errors"][0]["field"] == "assignee_id"
    # The admin sees everything and may complete anyone's task.
    assert len(await _ids(http, company.auth)) == 3
    done = await http.post(f"/api/v1/tasks/{theirs['id']}/complete", headers=company.auth)
    assert done.status_code == 200 and done.json()["task"]["status"] == "done" and done.json()["next_task"] is None
    assert (await http.get(f"/api/v1/tasks/{theirs['id']}", headers=other.auth)).status_code in (404, 200)
    assert await _ids(http, other.auth) == []


async def test_change_complete_reopen_and_delete_are_audited(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    client = await seed_client(company, "Acme")
    task = await _task(http, company.auth, title="Draft", due_at="2030-01-10T09:00:00+00:00")
    changed = await http.patch(
        f"/api/v1/tasks/{task['id']}",
        json={"title": "Contract", "due_at": "2030-01-11T09:00:00+03:00", "client_id": client, "priority": "low"},
        headers=company.auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["due_at"] == "2030-01-11T06:00:00Z" and changed.json()["client_id"] == client
    naive = await http.patch(
        f"/api/v1/tasks/{task['id']}", json={"due_at": "2030-01-11T09:00:00"}, headers=company.auth
    )
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "due_at"
    cleared = await http.patch(f"/api/v1/tasks/{task['id']}", json={"client_id": None}, headers=company.auth)
    assert cleared.json()["client_id"] is None

    done = await http.post(f"/api/v1/tasks/{task['id']}/complete", headers=company.auth)
    assert done.json()["task"]["status"] == "done" and done.json()["task"]["done_at"] is not None
    again = await http.post(f"/api/v1/tasks/{task['id']}/complete", headers=company.auth)
    assert again.status_code == 409
    reopened = await http.post(f"/api/v1/tasks/{task['id']}/reopen", headers=company.auth)
    assert reopened.status_code == 200 and reopened.json()["status"] == "open" and reopened.json()["done_at"] is None
    assert (await http.delete(f"/api/v1/tasks/{task['id']}", headers=other.auth)).status_code in (404, 204)
    assert (await http.delete(f"/api/v1/tasks/{task['id']}", headers=company.auth)).status_code == 204
    assert (await http.get(f"/api/v1/tasks/{task['id']}", headers=company.auth)).status_code == 404

    entries = await audit_actions(http, company.auth, entity="task", entity_id=str(task["id"]))
    assert [entry["action"] for entry in entries] == [
        "task.deleted",
        "task.reopened",
        "task.completed",
        "task.updated",
        "task.updated",
        "task.created",
    ]
    first_update = entries[-2]["changes"]
    assert first_update["title"] == ["Draft", "Contract"]
    assert first_update["due_at"] == ["2030-01-10T09:00:00+00:00", "2030-01-11T06:00:00+00:00"]
    assert first_update["client_id"] == [None, client] and first_update["priority"] == ["normal", "low"]
    assert entries[0]["changes"]["title"] == ["Contract", None]


async def test_views_follow_the_callers_local_day_around_midnight(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    zone = "Asia/Vladivostok"  # UTC+10: its midnight is 14:00 UTC of the day before
    admin = await my_id(http, company.auth)
    await set_timezone(company, admin, zone)
    today = local_today(zone)
    midnight = local_midnight(today, zone)
    tomorrow = midnight + timedelta(days=1)
    monday = local_midnight(today - timedelta(days=today.weekday()), zone)
    next_monday = monday + timedelta(days=7)

    async def due(label: str, moment: datetime) -> int:
        return int((await _task(http, company.auth, title=label, due_at=iso(moment)))["id"])

    just_after_midnight = await due("00:01 today", midnight + timedelta(minutes=1))
    just_before_midnight = await due("23:59 yesterday", midnight - timedelta(minutes=1))
    late_today = await due("23:59 today", tomorrow - timedelta(minutes=1))
    early_tomorrow = await due("00:01 tomorrow", tomorrow + timedelta(minutes=1))
    week_start = await due("Monday 00:01", monday + timedelta(minutes=1))
    before_week = await due("Sunday before 23:59", monday - timedelta(minutes=1))
    week_end = await due("Sunday 23:59", next_monday - timedelta(minutes=1))
    after_week = await due("next Monday 00:01", next_monday + timedelta(minutes=1))
    done_yesterday = await due("done, yesterday", midnight - timedelta(minutes=2))
    assert (await http.post(f"/api/v1/tasks/{done_yesterday}/complete", headers=company.auth)).status_code == 200
    # In UTC, 00:01 Vladivostok is still the previous day: the view must not use UTC days.
    assert (midnight + timedelta(minutes=1)).astimezone(UTC).date() != today

    assert set(await _ids(http, company.auth, view="today")) == {just_after_midnight, late_today}
    week = set(await _ids(http, company.auth, view="week"))
    assert {week_start, week_end, just_after_midnight, late_today} <= week
    assert not {before_week, after_week} & week
    assert (early_tomorrow in week) == (today.weekday() != 6)  # tomorrow is next week on a Sunday
    assert (just_before_midnight in week) == (today.weekday() != 0)
    overdue = set(await _ids(http, company.auth, view="overdue"))
    assert {just_before_midnight, before_week} <= overdue
    assert not {done_yesterday, late_today, early_tomorrow, after_week} & overdue
    assert (just_after_midnight in overdue) == (midnight + timedelta(minutes=1) < datetime.now(UTC))
    listed = (await http.get("/api/v1/tasks", headers=company.auth, params={"view": "overdue"})).json()["items"]
    assert all(task["overdue"] for task in listed)
    # Another caller in UTC sees other "today": the view is computed in the caller's zone.
    assert await _ids(http, other.auth, view="today") == []
    bad = await http.get("/api/v1/tasks", headers=company.auth, params={"view": "tomorrow", "status": "later"})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"view", "status"}


async def test_filters_sort_and_pages(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    client = await seed_client(company, "Filtered")
    base = datetime(2031, 5, 1, 9, tzinfo=UTC)
    ids = [
        (
            await _task(
                http,
                company.auth,
                title=f"t{n}",
                due_at=iso(base + timedelta(hours=n % 3)),
                client_id=client if n % 2 else None,
                priority="high" if n == 4 else "normal",
            )
        )["id"]
        for n in range(7)
    ]
    await _task(http, other.auth, title="elsewhere", due_at=iso(base))
    pages: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "-due_at"}
        if cursor:
            params["cursor"] = cursor
        body = (await http.get("/api/v1/tasks", headers=company.auth, params=params)).json()
        pages += [task["id"] for task in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == await _ids(http, company.auth, sort="-due_at") and sorted(pages) == sorted(ids)
    assert await _ids(http, company.auth, sort="due_at") == pages[::-1]
    assert sorted(await _ids(http, company.auth, client_id=client)) == [ids[n] for n in (1, 3, 5)]
    assert await _ids(http, company.auth, priority="high") == [ids[4]]
    window = await _ids(
        http, company.auth, due_at_from=iso(base + timedelta(hours=1)), due_at_to=iso(base + timedelta(hours=2))
    )
    assert sorted(window) == [ids[n] for n in (1, 4)]
    naive = await http.get("/api/v1/tasks", headers=company.auth, params={"due_at_from": "2031-05-01T09:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "due_at_from"
    assert (await http.get("/api/v1/tasks", headers=company.auth, params={"sort": "title"})).status_code == 422
    huge = await http.get("/api/v1/tasks", headers=company.auth, params={"client_id": 2**40})
    assert huge.status_code == 422 and huge.json()["errors"][0]["field"] == "client_id"
    tasks_of_nobody = await http.post(
        "/api/v1/tasks", json={"title": "x", "due_at": iso(base), "assignee_id": 2**40}, headers=company.auth
    )
    assert tasks_of_nobody.status_code == 422 and tasks_of_nobody.json()["errors"][0]["field"] == "assignee_id"


async def test_completing_a_recurring_task_creates_the_next(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    admin = await my_id(http, company.auth)
    await set_timezone(company, admin, "Europe/Berlin")
    client = await seed_client(company, "Weekly")
    # Monday 10:00 in Berlin before the switch to summer time (2030-03-31).
    task = await _task(
        http,
        company.auth,
        title="Weekly report",
        due_at="2030-03-25T10:00:00+01:00",
        rrule="FREQ=WEEKLY;BYDAY=MO",
        client_id=client,
        remind_before_minutes=[30],
        checklist=[{"text": "Numbers", "done": False}],
    )
    ticked = await http.patch(
        f"/api/v1/tasks/{task['id']}", json={"checklist": [{"text": "Numbers", "done": True}]}, headers=company.auth
    )
    assert ticked.json()["checklist"] == [{"text": "Numbers", "done": True}]
    done = await http.post(f"/api/v1/tasks/{task['id']}/complete", headers=company.auth)
    assert done.status_code == 200, done.text
    following = done.json()["next_task"]
    # Still 10:00 on Monday in Berlin, now in summer time (+02:00).
    assert following["due_at_local"] == "2030-04-01T10:00:00+02:00" and following["due_at"] == "2030-04-01T08:00:00Z"
    assert following["rrule"] == "FREQ=WEEKLY;BYDAY=MO" and following["status"] == "open"
    assert following["client_id"] == client and following["remind_before_minutes"] == [30]
    assert following["checklist"] == [{"text": "Numbers", "done": False}] and following["title"] == "Weekly report"
    assert sorted(await _ids(http, company.auth)) == sorted([task["id"], following["id"]])
    # Completing twice creates nothing more.
    assert (await http.post(f"/api/v1/tasks/{task['id']}/complete", headers=company.auth)).status_code == 409
    assert len(await _ids(http, company.auth)) == 2
    # A series that has ended (UNTIL passed) creates no next task.
    last = await _task(
        http, company.auth, title="Ends", due_at="2030-03-25T10:00:00+01:00", rrule="FREQ=DAILY;UNTIL=20300326T235959Z"
    )
    first_done = (await http.post(f"/api/v1/tasks/{last['id']}/complete", headers=company.auth)).json()
    assert first_done["next_task"]["due_at"] == "2030-03-26T09:00:00Z"
    second = (await http.post(f"/api/v1/tasks/{first_done['next_task']['id']}/complete", headers=company.auth)).json()
    assert second["next_task"] is None
    never = await http.post(
        "/api/v1/tasks",
        json={"title": "x", "due_at": "2030-03-25T10:00:00Z", "rrule": "FREQ=DAILY;UNTIL=20200101T000000Z"},
        headers=company.auth,
    )
    assert never.status_code == 422 and never.json()["errors"][0]["field"] == "rrule"
    assert await _ids(http, other.auth) == []
    created = await audit_actions(http, company.auth, action="task.created", entity_id=str(following["id"]))
    assert created[0]["changes"]["previous_task_id"] == [None, task["id"]]
