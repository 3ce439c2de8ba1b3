"""Notifications: the caller's own list, newest first and paged by keyset, the unread count,
marking read; channels (e-mail, Telegram's fallback) and the reminder settings. Two
companies, and two users of one, never see each other's notifications."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.mail.tables import OutboxMessage
from crm.tenants.notifications.channels import (
    ChannelUnavailable,
    Notice,
    notify,
    register_channel,
    unregister_channel,
)
from crm.tenants.notifications.recipients import Recipient, load_recipient
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration.helpers import my_id, tenant_of
from tests.integration.test_reminders import utc
from tests.integration.test_reminders_support import drain, make_task, notifications, queued, timers, titles


async def _notify(company: SignedUpTenant, user_id: int, *titles_: str) -> None:
    """Notices given through the channels, as the reminder handlers give them."""
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        user = await load_recipient(user_id)
        assert user is not None
        for title in titles_:
            await notify(tenant, user, Notice(kind="task_reminder", title=title, body="", entity="task", entity_id=1))


async def _outbox(company: SignedUpTenant) -> list[tuple[str, str]]:
    async with tenant_scope(await tenant_of(company)):
        rows = await OutboxMessage.select(OutboxMessage.to_address, OutboxMessage.subject).order_by(OutboxMessage.id)
    return [(row["to_address"], row["subject"]) for row in rows]


async def test_the_list_is_mine_newest_first_paged_with_an_unread_count(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "staff", role="manager")
    admin = await my_id(http, company.auth)
    await _notify(company, admin, "one", "two", "three", "four", "five")
    await _notify(company, staff.id, "staff only")
    await _notify(other, await my_id(http, other.auth), "other company")

    first = await notifications(http, company.auth, limit=2)
    assert [item["title"] for item in first["items"]] == ["five", "four"] and first["unread"] == 5
    second = await notifications(http, company.auth, limit=2, cursor=first["next_cursor"])
    third = await notifications(http, company.auth, limit=2, cursor=second["next_cursor"])
    assert [item["title"] for item in second["items"] + third["items"]] == ["three", "two", "one"]
    assert third["next_cursor"] is None
    oldest = await titles(http, company.auth, sort="created_at")
    assert oldest == ["one", "two", "three", "four", "five"]
    assert await titles(http, staff.auth) == ["staff only"]
    assert await titles(http, other.auth) == ["other company"]
    bad = await http.get("/api/v1/notifications", params={"sort": "title"}, headers=company.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "sort"
    wrong = await http.get(
        "/api/v1/notifications", params={"sort": "created_at", "cursor": first["next_cursor"]}, headers=company.auth
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "cursor"

    newest = first["items"][0]
    read = await http.post(f"/api/v1/notifications/{newest['id']}/read", headers=company.auth)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await http.post(f"/api/v1/notifications/{newest['id']}/read", headers=company.auth)
    assert again.json()["read_at"] == read.json()["read_at"]  # the first reading counts
    page = await notifications(http, company.auth, unread="true")
    assert page["unread"] == 4 and "five" not in [item["title"] for item in page["items"]]
    assert await titles(http, company.auth, unread="false") == ["five"]
    # Someone else's notification — a colleague's, or another company's — is not there.
    staff_item = (await notifications(http, staff.auth))["items"][0]
    assert (await http.post(f"/api/v1/notifications/{staff_item['id']}/read", headers=company.auth)).status_code == 404
    other_item = (await notifications(http, other.auth))["items"][0]
    assert (await http.post(f"/api/v1/notifications/{other_item['id']}/read", headers=company.auth)).status_code in (
        200,
        404,
    )  # the same id may be one of the caller's own: then it is theirs, never the other company's
    assert (await notifications(http, other.auth))["unread"] == 1

    everything = await http.post("/api/v1/notifications/read-all", headers=company.auth)
    assert everything.status_code == 200 and everything.json()["marked"] in (3, 4)
    assert (await notifications(http, company.auth))["unread"] == 0
    assert (await notifications(http, staff.auth))["unread"] == 1
    assert (await notifications(http, other.auth))["unread"] == 1
    assert (await http.get("/api/v1/notifications")).status_code == 401


class FakeTelegram:
    """The bot issue's channel as it behaves towards us: delivers, or cannot reach a user."""

    name = "telegram"

    def __init__(self, unreachable: set[int]) -> None:
        self.unreachable = unreachable
        self.sent: list[tuple[str, int, str]] = []

    async def deliver(self, tenant: TenantRef, user: Recipient, notification: Notice) -> None:
        if user.id in self.unreachable:
            raise ChannelUnavailable("the user blocked the bot")
        self.sent.append((tenant.id, user.id, notification.title))


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    channel = FakeTelegram(set())
    register_channel(channel)
    try:
        yield channel
    finally:
        unregister_channel("telegram")


async def test_channels_email_and_telegram_with_its_email_fallback(
    make_tenant: TenantFactory, http: httpx.AsyncClient, telegram: FakeTelegram
) -> None:
    company, other = await make_tenant(), await make_tenant()
    blocked = await add_staff(http, company, "blocked", role="manager")
    admin = await my_id(http, company.auth)

    settings = await http.get("/api/v1/me/notification-settings", headers=company.auth)
    assert settings.json() == {"reminder_minutes": [15], "channels": []}
    await _notify(company, admin, "console only")
    assert await _outbox(company) == []

    chosen = await http.put("/api/v1/me/notification-settings", json={"channels": ["email"]}, headers=company.auth)
    assert chosen.json() == {"reminder_minutes": [15], "channels": ["email"]}
    await _notify(company, admin, "by mail")
    assert await _outbox(company) == [(company.email, "by mail")]

    assert (
        await http.put("/api/v1/me/notification-settings", json={"channels": ["telegram"]}, headers=company.auth)
    ).is_success
    assert (
        await http.put("/api/v1/me/notification-settings", json={"channels": ["telegram"]}, headers=blocked.auth)
    ).is_success
    telegram.unreachable.add(blocked.id)
    await _notify(company, admin, "by telegram")
    await _notify(company, blocked.id, "blocked bot")
    tenant = await tenant_of(company)
    assert telegram.sent == [(tenant.id, admin, "by telegram")]
    assert (await _outbox(company))[1:] == [(blocked.email, "blocked bot")]
    unregister_channel("telegram")  # the bot not running: e-mail instead
    await _notify(company, admin, "no bot")
    assert (await _outbox(company))[2:] == [(company.email, "no bot")]
    # Every notice is in the console list whatever the channels.
    assert await titles(http, company.auth) == ["no bot", "by telegram", "by mail", "console only"]
    assert await _outbox(other) == [] and await titles(http, other.auth) == []


async def test_reminder_defaults_apply_to_tasks_without_their_own(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    bad = await http.put(
        "/api/v1/me/notification-settings",
        json={"reminder_minutes": [5, -1, 50000], "channels": ["pigeon"]},
        headers=company.auth,
    )
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {
        "reminder_minutes.1",
        "reminder_minutes.2",
        "channels.0",
    }
    changed = await http.put(
        "/api/v1/me/notification-settings", json={"reminder_minutes": [60, 5, 60]}, headers=company.auth
    )
    assert changed.json()["reminder_minutes"] == [5, 60]
    own = await make_task(http, company.auth, title="Own", due_at="2030-03-26T10:00:00Z", remind_before_minutes=[30])
    default = await make_task(http, company.auth, title="Default", due_at="2030-03-26T10:00:00Z")
    await make_task(http, other.auth, title="Other", due_at="2030-03-26T10:00:00Z")
    at = sorted((row["task_id"], row["remind_at"]) for row in await queued(services, company))
    assert at == [
        (own["id"], utc("2030-03-26T09:30:00Z")),
        (default["id"], utc("2030-03-26T09:00:00Z")),
        (default["id"], utc("2030-03-26T09:55:00Z")),
    ]
    # The other company keeps the shipped default: 15 minutes.
    assert [row["remind_at"] for row in await queued(services, other)] == [utc("2030-03-26T09:45:00Z")]
    assert [row["due_at"] for row in await timers(services, other, "reminders.due")] == [utc("2030-03-26T09:45:00Z")]
    await drain(services, utc("2030-03-26T09:56:00Z"))
    # One drain claims them together, so they may run in any order.
    assert sorted(await titles(http, company.auth)) == ["Напоминание: Default"] * 2 + ["Напоминание: Own"]
    assert await titles(http, other.auth) == ["Reminder: Other".replace("Reminder", "Напоминание")]
