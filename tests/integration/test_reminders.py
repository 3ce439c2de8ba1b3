"""Task reminders: one notice per offset, rescheduled when the task moves, silent when it
is done or deleted, out of quiet hours, snoozed; the morning digest and birthdays; a timer
run twice notifies once. Two companies each, neither sees the other's notices."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import time_machine

from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope
from crm.platform.timers import Timer
from crm.tenants.reminders.handlers import deliver_due_reminders
from crm.tenants.users.tables import User
from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import my_id, tenant_of
from tests.integration.test_reminders_support import drain, make_task, notifications, queued, timers, titles

REMINDER = "task_reminder"
SECOND = timedelta(seconds=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def test_a_reminder_fires_once_at_each_offset_for_its_company_only(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant(locale="en", timezone="UTC")
    # Tuesday 12:00 in Moscow (the signup's timezone) is 09:00 UTC.
    task = await make_task(
        http,
        company.auth,
        title="Позвонить в «Ромашку»",
        due_at="2030-03-26T12:00:00+03:00",
        remind_before_minutes=[15, 60],
    )
    await make_task(http, other.auth, title="Other company", due_at="2030-03-26T09:00:00Z", remind_before_minutes=[60])
    # One timer per company and moment; the reminders wait in the company's queue.
    scheduled = await timers(services, company, "reminders.due")
    assert sorted(row["due_at"] for row in scheduled) == [utc("2030-03-26T08:00:00Z"), utc("2030-03-26T08:45:00Z")]
    assert [(row["task_id"], row["offset_minutes"]) for row in await queued(services, company)] == [
        (task["id"], 60),
        (task["id"], 15),
    ]

    await drain(services, utc("2030-03-26T07:59:00Z"))
    assert await titles(http, company.auth, kind=REMINDER) == []
    await drain(services, utc("2030-03-26T08:00:30Z"))
    await drain(services, utc("2030-03-26T08:00:40Z"))
    page = await notifications(http, company.auth, kind=REMINDER)
    assert [item["title"] for item in page["items"]] == ["Напоминание: Позвонить в «Ромашку»"]
    item = page["items"][0]
    assert item["body"] == "Срок: 26.03.2030 12:00" and item["kind"] == "task_reminder"
    assert item["entity"] == "task" and item["link"] == f"/api/v1/tasks/{task['id']}" and page["unread"] == 1

    await drain(services, utc("2030-03-26T08:45:30Z"))
    assert len(await titles(http, company.auth, kind=REMINDER)) == 2
    # The other company got its own reminder, in English, and nothing of the first one's.
    assert await titles(http, other.auth, kind=REMINDER) == ["Reminder: Other company"]
    assert (await notifications(http, other.auth, kind=REMINDER))["items"][0]["body"] == "Due: 2030-03-26 09:00"
    assert all(row["state"] == "done" for row in await timers(services, company, "reminders.due"))
    assert await queued(services, company) == [] and len(await queued(services, other)) == 0


async def test_a_moved_task_reminds_at_its_new_time_only(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    task = await make_task(
        http, company.auth, title="Move me", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[30]
    )
    moved = await http.patch(
        f"/api/v1/tasks/{task['id']}", json={"due_at": "2030-03-27T10:00:00Z"}, headers=company.auth
    )
    assert moved.status_code == 200, moved.text
    assert [row["due_at"] for row in await timers(services, company, "reminders.due")] == [
        utc("2030-03-26T09:30:00Z"),
        utc("2030-03-27T09:30:00Z"),
    ]
    # The reminder for the old time left the queue; the old moment's timer stays and finds nothing.
    assert [row["remind_at"] for row in await queued(services, company)] == [utc("2030-03-27T09:30:00Z")]
    # A change that does not touch the time schedules nothing more.
    assert (await http.patch(f"/api/v1/tasks/{task['id']}", json={"title": "Moved"}, headers=company.auth)).is_success
    assert len(await timers(services, company, "reminders.due")) == 2
    assert len(await queued(services, company)) == 1

    await drain(services, utc("2030-03-26T09:31:00Z"))  # the old time: the stale timer stays silent
    assert await titles(http, company.auth, kind=REMINDER) == []
    assert [row["state"] for row in await timers(services, company, "reminders.due")] == ["done", "pending"]
    await drain(services, utc("2030-03-27T09:31:00Z"))
    assert await titles(http, company.auth, kind=REMINDER) == ["Напоминание: Moved"]
    assert await titles(http, other.auth, kind=REMINDER) == []


async def test_done_deleted_and_reassigned_tasks_are_not_reminded(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    colleague = await add_staff(http, company, "colleague", role="manager")
    done = await make_task(http, company.auth, title="Done", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[30])
    gone = await make_task(http, company.auth, title="Gone", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[30])
    handed = await make_task(
        http, company.auth, title="Handed", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[30]
    )
    assert (await http.post(f"/api/v1/tasks/{done['id']}/complete", headers=company.auth)).status_code == 200
    assert (await http.delete(f"/api/v1/tasks/{gone['id']}", headers=company.auth)).status_code == 204
    reassigned = await http.patch(
        f"/api/v1/tasks/{handed['id']}", json={"assignee_id": colleague.id}, headers=company.auth
    )
    assert reassigned.status_code == 200, reassigned.text

    await drain(services, utc("2030-03-26T09:31:00Z"))
    assert await titles(http, company.auth, kind=REMINDER) == []
    # The new assignee (English by default) is reminded instead, once.
    assert await titles(http, colleague.auth, kind=REMINDER) == ["Reminder: Handed"]
    assert await titles(http, other.auth, kind=REMINDER) == []

    # Reopened, the done task is reminded again: its reminder (09:30) is still ahead of the clock.
    reopened = await http.post(f"/api/v1/tasks/{done['id']}/reopen", headers=company.auth)
    assert reopened.status_code == 200
    await drain(services, utc("2030-03-26T09:32:00Z"))
    assert await titles(http, company.auth, kind=REMINDER) == ["Напоминание: Done"]


async def test_quiet_hours_move_a_reminder_to_the_next_working_start(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    hours = {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}
    assert (await http.patch("/api/v1/me", json={"working_hours": hours}, headers=company.auth)).is_success
    # Wednesday 08:30 Moscow, an hour before: 07:30 is night → Wednesday 09:00 (06:00 UTC).
    early = await make_task(
        http, company.auth, title="Early", due_at="2030-03-27T08:30:00+03:00", remind_before_minutes=[60]
    )
    # Sunday 00:30, an hour before: Saturday 23:30 → Monday 09:00, the next working start.
    weekend = await make_task(
        http, company.auth, title="Night", due_at="2030-03-31T00:30:00+03:00", remind_before_minutes=[60]
    )
    # Wednesday 21:30, an hour before: an evening, not the night — on time.
    evening = await make_task(
        http, company.auth, title="Evening", due_at="2030-03-27T21:30:00+03:00", remind_before_minutes=[60]
    )
    at = {row["task_id"]: row["remind_at"] for row in await queued(services, company)}
    assert at == {
        early["id"]: utc("2030-03-27T09:00:00+03:00"),
        weekend["id"]: utc("2030-04-01T09:00:00+03:00"),
        evening["id"]: utc("2030-03-27T20:30:00+03:00"),
    }
    await drain(services, utc("2030-03-27T07:31:00+03:00"))  # the original time: nothing yet
    assert await titles(http, company.auth, kind=REMINDER) == []
    await drain(services, utc("2030-03-27T09:00:30+03:00"))
    assert await titles(http, company.auth, kind=REMINDER) == ["Напоминание: Early"]
    # Working hours that start early end the quiet hours early on working days.
    hours["start"] = "07:00"
    assert (await http.patch("/api/v1/me", json={"working_hours": hours}, headers=company.auth)).is_success
    dawn = await make_task(
        http, company.auth, title="Dawn", due_at="2030-03-28T08:00:00+03:00", remind_before_minutes=[45]
    )
    dawn_reminders = [row for row in await queued(services, company) if row["task_id"] == dawn["id"]]
    assert [row["remind_at"] for row in dawn_reminders] == [utc("2030-03-28T07:15:00+03:00")]
    assert await titles(http, other.auth, kind=REMINDER) == []


async def test_snooze_for_15_minutes_an_hour_or_until_tomorrow_morning(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    task = await make_task(
        http, company.auth, title="Snoozy", due_at="2030-03-29T12:00:00+03:00", remind_before_minutes=[]
    )
    path = f"/api/v1/tasks/{task['id']}/snooze"
    with time_machine.travel(utc("2030-03-26T10:00:00+03:00"), tick=False):
        fifteen = await http.post(path, json={"for": "15m"}, headers=company.auth)
        hour = await http.post(path, json={"for": "1h"}, headers=company.auth)
        tomorrow = await http.post(path, json={"for": "tomorrow"}, headers=company.auth)
    assert fifteen.status_code == 200, fifteen.text
    assert fifteen.json()["remind_at"] == "2030-03-26T07:15:00Z"
    assert fifteen.json()["remind_at_local"] == "2030-03-26T10:15:00+03:00"
    assert hour.json()["remind_at"] == "2030-03-26T08:00:00Z"
    assert tomorrow.json()["remind_at_local"] == "2030-03-27T09:00:00+03:00"
    # Snoozed late in the evening: 15 minutes would be night, so it is the next morning.
    with time_machine.travel(utc("2030-03-26T21:50:00+03:00"), tick=False):
        late = await http.post(path, json={"for": "15m"}, headers=company.auth)
    assert late.json()["remind_at_local"] == "2030-03-27T09:00:00+03:00"

    bad = await http.post(path, json={"for": "2h"}, headers=company.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "for"
    assert (await http.post(path, json={"for": "15m"}, headers=other.auth)).status_code == 404

    await drain(services, utc("2030-03-26T07:15:30Z"))
    assert await titles(http, company.auth, kind=REMINDER) == ["Напоминание: Snoozy"]
    assert (await notifications(http, company.auth, kind=REMINDER))["items"][0]["body"].startswith(
        "Отложенное напоминание"
    )
    await drain(services, utc("2030-03-26T08:00:30Z"))
    assert len(await titles(http, company.auth, kind=REMINDER)) == 2
    # Tomorrow 09:00 holds two snoozes of the same moment: one notice.
    await drain(services, utc("2030-03-27T06:00:30Z"))
    assert len(await titles(http, company.auth, kind=REMINDER)) == 3
    assert await titles(http, other.auth, kind=REMINDER) == []

    assert (await http.post(f"/api/v1/tasks/{task['id']}/complete", headers=company.auth)).status_code == 200
    assert (await http.post(path, json={"for": "1h"}, headers=company.auth)).status_code == 409


async def test_the_morning_digest_lists_today_and_overdue_and_plans_the_next_day(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "staff", role="manager")
    # Monday noon in Moscow: the first task starts the admin's digest chain for Tuesday 09:00.
    with time_machine.travel(utc("2030-03-25T12:00:00+03:00"), tick=True):
        await make_task(http, company.auth, title="Late report", due_at="2030-03-25T10:00:00+03:00")
        await make_task(http, company.auth, title="Call Vector", due_at="2030-03-26T11:00:00+03:00")
        await make_task(http, company.auth, title="Send offer", due_at="2030-03-26T16:30:00+03:00")
        await make_task(http, company.auth, title="Next week", due_at="2030-04-02T10:00:00+03:00")
        finished = await make_task(http, company.auth, title="Finished", due_at="2030-03-26T10:00:00+03:00")
        assert (await http.post(f"/api/v1/tasks/{finished['id']}/complete", headers=company.auth)).is_success
        await make_task(http, other.auth, title="Other company", due_at="2030-03-26T11:00:00+03:00")
    digests = await timers(services, company, "reminders.digest")
    assert [(row["payload"]["day"], row["due_at"]) for row in digests] == [
        ("2030-03-26", utc("2030-03-26T09:00:00+03:00"))
    ]

    await drain(services, utc("2030-03-26T09:00:30+03:00"))
    page = await notifications(http, company.auth, kind="digest")
    assert [item["title"] for item in page["items"]] == ["Задачи на 26.03.2030: сегодня 2, просрочено 1"]
    assert page["items"][0]["body"] == (
        "Сегодня:\n- 26.03.2030 11:00 Call Vector\n- 26.03.2030 16:30 Send offer\n"
        "Просрочено:\n- 25.03.2030 10:00 Late report"
    )
    assert (await notifications(http, other.auth, kind="digest"))["items"][0]["title"].startswith(
        "Задачи на 26.03.2030"
    )
    # The chain goes on: Wednesday's digest; and the colleague without one got theirs (at
    # 09:00 in their timezone, UTC: still today).
    days = {
        (row["payload"]["user_id"], row["payload"]["day"])
        for row in await timers(services, company, "reminders.digest")
    }
    admin = await my_id(http, company.auth)
    assert {(admin, "2030-03-26"), (admin, "2030-03-27"), (staff.id, "2030-03-26")} <= days
    # Saturday is no working day: no digest, but the chain continues to Sunday and Monday.
    for day in (27, 28, 29, 30):
        await drain(services, utc(f"2030-03-{day}T09:00:30+03:00"))
    assert len((await notifications(http, company.auth, kind="digest"))["items"]) == 4  # Tue, Wed, Thu, Fri
    assert await titles(http, staff.auth, kind="digest") == []  # nothing on their plate


async def test_birthdays_of_clients_and_colleagues_once_a_year(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    manager = await add_staff(http, company, "manager", role="manager")
    admin = await my_id(http, company.auth)
    person = await http.post(
        "/api/v1/clients",
        json={"kind": "person", "name": "Иван Петров", "birthday": "1980-03-26", "responsible_id": manager.id},
        headers=company.auth,
    )
    assert person.status_code == 201, person.text
    async with tenant_scope(await tenant_of(company)):
        await User.update({User.birthday: date(1990, 3, 26)}).where(User.id == manager.id)
    with time_machine.travel(utc("2030-03-25T12:00:00+03:00"), tick=True):
        await make_task(http, company.auth, title="Admin task", due_at="2030-04-10T10:00:00+03:00")
        await make_task(http, manager.auth, title="Manager task", due_at="2030-04-10T10:00:00+03:00")
    # The manager's morning is 09:00 UTC (their timezone), the admin's 09:00 in Moscow.
    await drain(services, utc("2030-03-26T09:00:30Z"))

    # The responsible manager hears of the client (in English, their locale) …
    page = await notifications(http, manager.auth, kind="birthday")
    assert [item["title"] for item in page["items"]] == ["Birthday: Иван Петров"]
    assert page["items"][0]["link"] == f"/api/v1/clients/{person.json()['id']}"
    # … the admins of the colleague's birthday; nobody else, and the other company of nothing.
    page = await notifications(http, company.auth, kind="birthday")
    assert [item["title"] for item in page["items"]] == ["День рождения: Manager"]
    assert page["items"][0]["link"] == f"/api/v1/users/{manager.id}"
    assert await titles(http, other.auth, kind="birthday") == []
    assert admin != manager.id

    # A year later, again — once.
    # (A digest that runs late plans the next one from the present: no days are replayed.)
    await drain(services, utc("2031-03-25T09:00:30Z"))
    await drain(services, utc("2031-03-26T09:00:30Z"))
    await drain(services, utc("2031-03-26T09:00:40Z"))
    assert len(await titles(http, manager.auth, kind="birthday")) == 2
    assert len(await titles(http, company.auth, kind="birthday")) == 2


async def test_a_reminder_timer_run_twice_or_at_once_notifies_once(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    await make_task(http, company.auth, title="Only once", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[10])
    [row] = await timers(services, company, "reminders.due")
    tenant = await tenant_of(company)
    timer = Timer(row["id"], tenant.id, "reminders.due", row["payload"], 1, services.db.pool, row["due_at"])
    # Two workers holding the same message at the same moment, then a third run later.
    await asyncio.gather(deliver_due_reminders(tenant, [timer]), deliver_due_reminders(tenant, [timer, timer]))
    await deliver_due_reminders(tenant, [timer])
    # And the timer row itself, put back as if its first runner died after committing.
    await drain(services, utc("2030-03-26T09:50:30Z"))
    await services.db.pool.execute("UPDATE platform.timers SET state = 'pending' WHERE id = $1", row["id"])
    await drain(services, utc("2030-03-26T09:51:00Z"))
    assert await titles(http, company.auth, kind=REMINDER) == ["Напоминание: Only once"]
    assert await titles(http, other.auth, kind=REMINDER) == []
