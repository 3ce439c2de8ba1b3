"""Task reminders through Telegram: the channel queues a ``telegram.send`` timer in the
notifying transaction, the sender delivers it to the linked chat of a fake Bot API server
(aiogram's real HTTP session) with the reminder's buttons; Done and Snooze go through the
task services, audited as done from the bot; a 429 is waited out and a blocked chat falls
back to e-mail. Two companies, and neither sees the other's reminders."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from aiogram import Bot, Dispatcher

from crm.bot.callbacks import ClientCardOpen, ReminderDone, ReminderSnooze
from crm.bot.channel import install_telegram, uninstall_telegram
from crm.bot.dispatcher import create_bot, create_dispatcher
from crm.bot.reminder_texts import reminder_text
from crm.bot.sender import SEND_KIND, TelegramSender
from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope
from crm.platform.timers import execute, in_process_runners_paused, take
from crm.settings import Settings
from crm.tenants.mail.tables import OutboxMessage
from crm.tenants.notifications.channels import TELEGRAM, notify, registered_channel
from crm.tenants.notifications.recipients import load_recipient
from crm.tenants.notifications.texts import reminder_notice
from crm.tenants.reminders.services import REMINDER_SNOOZED
from crm.tenants.tasks.services import load_task
from tests.conftest import SignedUpTenant, TenantFactory
from tests.fakes.telegram import Call, FakeTelegram
from tests.integration import test_bot_link as link
from tests.integration.helpers import my_id, tenant_of
from tests.integration.test_reminders_support import make_task, timers

# The bot's fixtures, shared with the linking tests.
fake_telegram = link.fake_telegram
bot_settings = link.bot_settings
bot_base_url = link.bot_base_url
bot_http = link.bot_http


@pytest.fixture
async def sender(bot_settings: Settings) -> AsyncIterator[TelegramSender]:
    """This process sends through the fake, with the telegram channel registered. The suite's
    app runs timers in-process: paused, so the test decides when the sender runs."""
    installed = install_telegram(bot_settings.telegram)
    assert installed is not None
    try:
        async with in_process_runners_paused():
            yield installed
    finally:
        await uninstall_telegram()


@dataclass
class Conversation:
    fake: FakeTelegram
    bot: Bot
    dispatcher: Dispatcher

    async def press(self, user_id: int, data: str, *, message_id: int = 1) -> list[Call]:
        """Press a button; the calls the bot made in answer."""
        mark = len(self.fake.calls)
        update = self.fake.button_press(user_id, data, message_id=message_id)
        await self.dispatcher.feed_webhook_update(self.bot, update)
        return self.fake.calls[mark:]

    async def say(self, user_id: int, text: str) -> None:
        await self.dispatcher.feed_webhook_update(self.bot, self.fake.message(user_id, text))


@pytest.fixture
async def chat(bot_settings: Settings, services: Services, fake_telegram: FakeTelegram) -> AsyncIterator[Conversation]:
    bot = create_bot(bot_settings.telegram)
    try:
        yield Conversation(fake_telegram, bot, create_dispatcher(services))
    finally:
        await bot.session.close()


def telegram_user() -> int:
    return 10**9 + secrets.randbelow(10**9)


async def link(bot_http: httpx.AsyncClient, chat: Conversation, company: SignedUpTenant) -> int:
    """Link a new Telegram account to the company's admin and choose Telegram for reminders."""
    response = await bot_http.post("/api/v1/me/telegram-link", headers=company.auth)
    assert response.status_code == 201, response.text
    account = telegram_user()
    await chat.say(account, f"/start {response.json()['url'].split('?start=', 1)[1]}")
    chosen = await bot_http.put(
        "/api/v1/me/notification-settings", json={"channels": ["telegram"]}, headers=company.auth
    )
    assert chosen.status_code == 200, chosen.text
    return account


async def remind(company: SignedUpTenant, user_id: int, task_id: int) -> None:
    """The reminder the due-reminders handler gives, through the channels."""
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        user = await load_recipient(user_id)
        assert user is not None
        await notify(tenant, user, reminder_notice(user, await load_task(task_id)))


async def send_queued(services: Services, company: SignedUpTenant, *, within_seconds: int = 0) -> int:
    """Run the company's ``telegram.send`` timers due within ``within_seconds`` — only this
    company's, so work of other suites sharing the database is left alone."""
    tenant = await tenant_of(company)
    pool = services.db.pool
    rows = await pool.fetch(
        "UPDATE platform.timers SET state = 'queued', lease_until = now() + interval '10 minutes'"
        " WHERE tenant_id = $1 AND kind = $2 AND state = 'pending'"
        " AND due_at <= now() + make_interval(secs => $3) RETURNING id",
        tenant.id,
        SEND_KIND,
        within_seconds,
    )
    taken = await take(pool, [row["id"] for row in rows], tenant.id)
    for timer in taken:
        assert await execute([timer]) == "done"
    return len(taken)


def sent_to(fake: FakeTelegram, chat_id: int) -> list[Call]:
    """The notifications delivered to ``chat_id`` (not the bot's answers in conversation)."""
    return [
        call
        for call in fake.calls_to("sendMessage")
        if call.params.get("chat_id") == chat_id and call.status == 200 and str(call.params["text"]).startswith("🔔")
    ]


def buttons(call: Call) -> list[tuple[str, str]]:
    return [
        (button["text"], button["callback_data"])
        for row in call.params["reply_markup"]["inline_keyboard"]
        for button in row
    ]


async def audit(http: httpx.AsyncClient, company: SignedUpTenant) -> list[tuple[str, str]]:
    response = await http.get("/api/v1/audit", headers=company.auth, params={"limit": "100"})
    assert response.status_code == 200, response.text
    return [(row["action"], row["channel"]) for row in response.json()["items"]]


async def outbox(company: SignedUpTenant) -> list[tuple[str, str]]:
    async with tenant_scope(await tenant_of(company)):
        rows = await OutboxMessage.select(OutboxMessage.to_address, OutboxMessage.subject).order_by(OutboxMessage.id)
    return [(row["to_address"], row["subject"]) for row in rows]


async def test_a_reminder_reaches_the_linked_chat_with_buttons_that_work(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    chat: Conversation,
    sender: TelegramSender,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga = await link(bot_http, chat, romashka)
    petr = await link(bot_http, chat, lyutik)
    client = await http.post(
        "/api/v1/clients",
        json={"kind": "person", "name": "Иван Клиентов", "phones": ["+79991234567"]},
        headers=romashka.auth,
    )
    assert client.status_code == 201, client.text
    client_id = client.json()["id"]
    task = await make_task(
        http, romashka.auth, title="Позвонить Ивану", due_at="2030-03-26T09:00:00Z", client_id=client_id
    )
    other = await make_task(http, lyutik.auth, title="Чужая задача", due_at="2030-03-26T09:00:00Z")

    await remind(romashka, await my_id(http, romashka.auth), task["id"])
    # Queued in the notifying transaction; nothing reaches Telegram before the sender runs.
    assert sent_to(chat.fake, olga) == []
    assert await send_queued(services, romashka) == 1
    [message] = sent_to(chat.fake, olga)
    text = str(message.params["text"])
    assert "Позвонить Ивану" in text and "Иван Клиентов" in text and "+79991234567" in text
    assert buttons(message) == [
        (reminder_text("ru", "button.done"), ReminderDone(task_id=task["id"]).pack()),
        (reminder_text("ru", "button.snooze.15m"), ReminderSnooze(task_id=task["id"], choice="15m").pack()),
        (reminder_text("ru", "button.snooze.1h"), ReminderSnooze(task_id=task["id"], choice="1h").pack()),
        (reminder_text("ru", "button.snooze.tomorrow"), ReminderSnooze(task_id=task["id"], choice="tomorrow").pack()),
        (reminder_text("ru", "button.client"), ClientCardOpen(client_id=client_id).pack()),
    ]
    # The other company's user got nothing.
    assert sent_to(chat.fake, petr) == []

    # Snooze: a snoozed reminder is scheduled, audited as done from the bot.
    calls = await chat.press(olga, ReminderSnooze(task_id=task["id"], choice="1h").pack())
    assert any(call.method.lower() == "answercallbackquery" for call in calls)
    snoozed = await timers(services, romashka, REMINDER_SNOOZED)
    assert [timer["payload"]["task_id"] for timer in snoozed] == [task["id"]]
    assert ("task.snoozed", "bot") in await audit(http, romashka)

    # A button naming a task of the other company finds nothing there (ids are per company).
    extra = await make_task(http, romashka.auth, title="Ещё одна", due_at="2030-03-27T09:00:00Z")
    assert extra["id"] != other["id"]
    calls = await chat.press(petr, ReminderDone(task_id=extra["id"]).pack())
    assert [call.params.get("text") for call in calls] == [reminder_text("ru", "task.gone")]
    assert (await http.get(f"/api/v1/tasks/{extra['id']}", headers=romashka.auth)).json()["status"] == "open"

    # Done completes the task through the task service, audited with the channel bot.
    calls = await chat.press(olga, ReminderDone(task_id=task["id"]).pack())
    assert [call.params.get("text") for call in calls if call.method.lower() == "editmessagetext"] == [
        reminder_text("ru", "done", title="Позвонить Ивану")
    ]
    assert (await http.get(f"/api/v1/tasks/{task['id']}", headers=romashka.auth)).json()["status"] == "done"
    assert ("task.completed", "bot") in await audit(http, romashka)
    again = await chat.press(olga, ReminderDone(task_id=task["id"]).pack())
    assert [call.params.get("text") for call in again] == [reminder_text("ru", "task.closed")]

    # Nothing of this is in the other company's log, and its own task is untouched.
    assert [row for row in await audit(http, lyutik) if row[0].startswith("task.") and row[1] == "bot"] == []
    assert (await http.get(f"/api/v1/tasks/{other['id']}", headers=lyutik.auth)).json()["status"] == "open"

    # A reminder of a task closed before the sender ran is not sent.
    await remind(romashka, await my_id(http, romashka.auth), task["id"])
    assert await send_queued(services, romashka) == 1
    assert len(sent_to(chat.fake, olga)) == 1


async def test_a_429_is_waited_out_and_the_reminder_still_arrives(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    chat: Conversation,
    sender: TelegramSender,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga = await link(bot_http, chat, romashka)
    petr = await link(bot_http, chat, lyutik)
    task = await make_task(http, romashka.auth, title="Отправить КП", due_at="2030-03-26T09:00:00Z")

    chat.fake.rate_limit("sendMessage", retry_after=1)
    await remind(romashka, await my_id(http, romashka.auth), task["id"])
    assert await send_queued(services, romashka) == 1
    refused = [call for call in chat.fake.calls_to("sendMessage") if call.params.get("chat_id") == olga]
    assert [call.status for call in refused] == [200, 429]  # the greeting when linked, then the reminder
    # Queued again for after retry_after, not lost and not failed.
    pending = [timer for timer in await timers(services, romashka, SEND_KIND) if timer["state"] == "pending"]
    assert len(pending) == 1 and pending[0]["payload"]["rate_limited"] == 1
    assert await send_queued(services, romashka) == 0  # not before its time
    assert await send_queued(services, romashka, within_seconds=5) == 1
    [message] = sent_to(chat.fake, olga)
    assert "Отправить КП" in str(message.params["text"])
    assert sent_to(chat.fake, petr) == []
    assert await send_queued(services, lyutik, within_seconds=5) == 0


async def test_a_chat_that_blocked_the_bot_gets_reminders_by_mail(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    chat: Conversation,
    sender: TelegramSender,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga = await link(bot_http, chat, romashka)
    petr = await link(bot_http, chat, lyutik)
    first = await make_task(http, romashka.auth, title="Первая", due_at="2030-03-26T09:00:00Z")
    second = await make_task(http, romashka.auth, title="Вторая", due_at="2030-03-26T10:00:00Z")
    theirs = await make_task(http, lyutik.auth, title="Их задача", due_at="2030-03-26T09:00:00Z")
    admin = await my_id(http, romashka.auth)

    chat.fake.block(olga)
    await remind(romashka, admin, first["id"])
    assert await send_queued(services, romashka) == 1
    # The 403 marks the link blocked and the notice goes by e-mail instead, not lost.
    assert await blocked_since(services, olga) is not None
    assert await outbox(romashka) == [(romashka.email, "Напоминание: Первая")]

    # From now on the channel refuses the chat and the caller e-mails at once.
    await remind(romashka, admin, second["id"])
    assert await send_queued(services, romashka) == 0
    assert await outbox(romashka) == [
        (romashka.email, "Напоминание: Первая"),
        (romashka.email, "Напоминание: Вторая"),
    ]

    # Writing to the bot again undoes the mark: the next reminder comes to Telegram.
    chat.fake.blocked.discard(olga)
    await chat.say(olga, "/help")
    assert await blocked_since(services, olga) is None
    third = await make_task(http, romashka.auth, title="Третья", due_at="2030-03-26T11:00:00Z")
    await remind(romashka, admin, third["id"])
    assert await send_queued(services, romashka) == 1
    assert "Третья" in str(sent_to(chat.fake, olga)[-1].params["text"])
    assert len(await outbox(romashka)) == 2

    # Stopping the bot in Telegram marks the chat at once, before any send is refused.
    await chat.dispatcher.feed_webhook_update(chat.bot, chat.fake.membership(olga, "kicked"))
    assert await blocked_since(services, olga) is not None
    await chat.dispatcher.feed_webhook_update(chat.bot, chat.fake.membership(olga, "member"))
    assert await blocked_since(services, olga) is None

    # The other company is unaffected: its chat is not blocked and it got no mail.
    assert await blocked_since(services, petr) is None
    await remind(lyutik, await my_id(http, lyutik.auth), theirs["id"])
    assert await send_queued(services, lyutik) == 1
    [message] = sent_to(chat.fake, petr)
    assert "Их задача" in str(message.params["text"])
    assert await outbox(lyutik) == []


async def blocked_since(services: Services, telegram_user_id: int) -> datetime | None:
    value: datetime | None = await services.db.pool.fetchval(
        "SELECT blocked_at FROM platform.telegram_links WHERE telegram_user_id = $1", telegram_user_id
    )
    return value


async def test_the_channel_is_registered_only_with_a_token(settings: Settings) -> None:
    assert install_telegram(settings.telegram) is None
    assert registered_channel(TELEGRAM) is None
