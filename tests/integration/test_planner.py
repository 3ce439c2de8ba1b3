"""The planner: per employee and local day counts, who sees whom, and speed on a large company."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from crm.platform.tenancy import scope_connection, tenant_scope
from crm.tenants.tasks.planner import PLANNER_SQL
from crm.tenants.users.tables import User
from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import my_id, tenant_of
from tests.integration.test_tasks_support import set_timezone


async def _planner(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await http.get("/api/v1/tasks/planner", headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _task(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> int:
    response = await http.post("/api/v1/tasks", json=body, headers=auth)
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def _days(employee: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {day["date"]: day for day in employee["days"] if day["total"]}


async def test_days_are_counted_in_each_assignees_zone(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    department = (await http.post("/api/v1/departments", json={"name": "Продажи"}, headers=company.auth)).json()["id"]
    head = await add_staff(http, company, "head", role="head_of_sales")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    outsider = await add_staff(http, company, "outsider", role="manager")
    for staff in (head, anna, boris):
        response = await http.patch(
            f"/api/v1/users/{staff.id}", json={"department_id": department}, headers=company.auth
        )
        assert response.status_code == 200, response.text
    await set_timezone(company, anna.id, "Asia/Vladivostok")
    await set_timezone(company, boris.id, "Europe/Moscow")

    # The same UTC day, two Vladivostok days: Monday 23:30 and Tuesday 00:30 local.
    monday_late = await _task(http, anna.auth, title="Late call", due_at="2030-03-04T23:30:00+10:00")
    await _task(http, anna.auth, title="Early call", due_at="2030-03-05T00:30:00+10:00", client_id=None)
    await _task(http, anna.auth, title="Sunday before", due_at="2030-03-03T23:59:00+10:00")
    await _task(http, anna.auth, title="Next Monday", due_at="2030-03-11T00:00:00+10:00")
    await _task(http, boris.auth, title="Moscow Monday", due_at="2030-03-04T23:30:00+03:00")
    await _task(http, outsider.auth, title="Elsewhere", due_at="2030-03-04T12:00:00+03:00")
    assert (await http.post(f"/api/v1/tasks/{monday_late}/complete", headers=anna.auth)).status_code == 200

    week = await _planner(http, company.auth, start="2030-03-04", weeks=1)
    assert week["start"] == "2030-03-04" and week["end"] == "2030-03-10" and week["weeks"] == 1
    employees = {employee["user_id"]: employee for employee in week["employees"]}
    admin = await my_id(http, company.auth)
    assert set(employees) == {admin, head.id, anna.id, boris.id, outsider.id}
    assert all(len(employee["days"]) == 7 for employee in employees.values())
    annas = employees[anna.id]
    assert annas["timezone"] == "Asia/Vladivostok" and (annas["total"], annas["done"], annas["overdue"]) == (2, 1, 0)
    days = _days(annas)
    assert set(days) == {"2030-03-04", "2030-03-05"}
    assert (days["2030-03-04"]["total"], days["2030-03-04"]["done"]) == (1, 1)
    assert days["2030-03-04"]["tasks"] == [
        {"id": monday_late, "title": "Late call", "due_at": "2030-03-04T13:30:00Z", "status": "done", "client_id": None}
    ]
    assert [task["title"] for task in days["2030-03-05"]["tasks"]] == ["Early call"]
    # 23:30 in Moscow is 20:30 UTC: Boris's Monday.
    assert set(_days(employees[boris.id])) == {"2030-03-04"}

    # A manager sees only themselves; the head of sales the department; filters narrow it.
    own = await _planner(http, anna.auth, start="2030-03-04", weeks=1)
    assert [employee["user_id"] for employee in own["employees"]] == [anna.id]
    team = await _planner(http, head.auth, start="2030-03-04", weeks=1)
    assert {employee["user_id"] for employee in team["employees"]} == {head.id, anna.id, boris.id}
    only_boris = await _planner(http, head.auth, start="2030-03-04", assignee_id=boris.id)
    assert [employee["user_id"] for employee in only_boris["employees"]] == [boris.id]
    assert only_boris["weeks"] == 3 and len(only_boris["employees"][0]["days"]) == 21
    assert (await _planner(http, anna.auth, start="2030-03-04", assignee_id=boris.id))["employees"] == []

    # The other company: its admin alone, with nothing planned.
    elsewhere = await _planner(http, other.auth, start="2030-03-04", weeks=1)
    assert [employee["total"] for employee in elsewhere["employees"]] == [0]
    assert len(elsewhere["employees"]) == 1
    too_long = await http.get("/api/v1/tasks/planner", headers=company.auth, params={"weeks": 7})
    assert too_long.status_code in (400, 422)


async def test_default_start_and_overdue(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    admin = await my_id(http, company.auth)
    await set_timezone(company, admin, "America/New_York")
    now = datetime.now(UTC)
    await _task(http, company.auth, title="Missed", due_at=(now - timedelta(minutes=30)).isoformat())
    await _task(http, company.auth, title="Coming", due_at=(now + timedelta(minutes=30)).isoformat())
    local_day = (now - timedelta(minutes=30)).astimezone(ZoneInfo("America/New_York")).date()
    planner = await _planner(http, company.auth, start=local_day.isoformat(), weeks=1)
    employee = planner["employees"][0]
    assert employee["overdue"] == 1 and employee["total"] == 2
    assert _days(employee)[local_day.isoformat()]["overdue"] == 1
    default = await _planner(http, company.auth)
    start = date.fromisoformat(default["start"])
    assert start.weekday() == 0 and default["weeks"] == 3
    today = now.astimezone(ZoneInfo("America/New_York")).date()
    assert start <= today < start + timedelta(days=7)


async def test_planner_reads_only_the_window_of_a_large_table(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company = await make_tenant()
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        for index in range(20):
            await User.insert(
                User(
                    email=f"m{index}@{company.slug}.example",
                    name=f"Manager {index:02}",
                    password_hash="-",
                    role="manager",
                    timezone=("Europe/Moscow", "Asia/Vladivostok", "Europe/Kaliningrad")[index % 3],
                )
            )
        # Two years of tasks, one every five minutes, spread over the 20 managers.
        await scope_connection().execute(
            """
            INSERT INTO tasks (title, assignee_id, due_at, status, remind_before_minutes)
            SELECT 'Task ' || n, u.ids[1 + n % 20],
                   timestamptz '2029-01-01 00:00+00' + n * interval '5 minutes',
                   CASE WHEN n % 3 = 0 THEN 'done' ELSE 'open' END, '{}'
            FROM generate_series(1, 200000) AS n,
                 (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE role = 'manager') AS u
            """
        )
        await scope_connection().execute("ANALYZE tasks")
        # The plan reads each employee's window off the (assignee_id, due_at) index.
        employees = [row["id"] for row in await scope_connection().fetch("SELECT id FROM users")]
        plan = await scope_connection().fetchval(
            "EXPLAIN (FORMAT JSON) " + PLANNER_SQL,
            employees,
            date(2029, 6, 3),
            date(2029, 6, 24),
            datetime.now(UTC),
            50,
        )
        nodes = list(_plan_nodes(json.loads(plan)[0]["Plan"]))
        assert any(node.get("Index Name") == "tasks_assignee_due" for node in nodes)
        assert not [node for node in nodes if node.get("Relation Name") == "tasks" and "Seq Scan" in node["Node Type"]]
    # (How fast it is, bench/ measures; here: the right rows from the right plan.)
    planner = await _planner(http, company.auth, start="2029-06-03", weeks=3)
    assert len(planner["employees"]) == 21
    managers = [employee for employee in planner["employees"] if employee["name"].startswith("Manager")]
    # 21 days × 288 tasks a day, shared by 20 managers.
    assert 6_000 <= sum(employee["total"] for employee in managers) <= 6_100
    assert all(len(day["tasks"]) <= 50 for employee in managers for day in employee["days"])


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)
