"""How updates reach the bot and how its calls reach Telegram: the fake Bot API server
through aiogram's real HTTP session (429, 403, multipart), the webhook route with its two
secrets, long polling, and the errors router. Two companies; neither sees the other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter, TelegramUnauthorizedError
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from crm.bot.callbacks import CallLogStart, CallNextStep, CallOutcomePick, ClientCardOpen
from crm.bot.polling import poll_updates
from crm.bot.runtime import create_runtime, webhook_path_secret
from crm.bot.work_texts import WorkTexts
from crm.platform.services import Services
from crm.settings import Settings
from tests.conftest import TenantFactory
from tests.fakes.telegram import FakeTelegram
from tests.integration import test_bot_link as link
from tests.integration.helpers import create_client
from tests.integration.test_bot_link import (
    EN,
    RU,
    TOKEN,
    WEBHOOK_SECRET,
    Conversation,
    code_in,
    deep_link,
    telegram_user,
)

# The bot's fixtures, shared with the linking tests.
fake_telegram = link.fake_telegram
bot_settings = link.bot_settings
bot_base_url = link.bot_base_url
bot_http = link.bot_http
chat = link.chat


WORK = WorkTexts("ru")


async def eventually(condition: Callable[[], bool], *, within: float = 15.0) -> None:
    """Wait for work running in the background (polling) to show; fails after ``within``."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the bot never got there"
        await asyncio.sleep(0.02)


async def test_the_fake_server_answers_like_telegram(fake_telegram: FakeTelegram) -> None:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.url)))
    try:
        assert (await bot.get_me()).username == fake_telegram.username
        keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Да", callback_data="yes")]])
        sent = await bot.send_message(5, "Привет", reply_markup=keyboard)
        assert sent.text == "Привет" and sent.chat.id == 5
        call = fake_telegram.calls_to("sendMessage")[-1]
        assert call.params["chat_id"] == 5
        assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]}

        fake_telegram.rate_limit("sendMessage", retry_after=3)
        with pytest.raises(TelegramRetryAfter) as limited:
            await bot.send_message(5, "too soon")
        assert limited.value.retry_after == 3
        assert (await bot.send_message(5, "later")).text == "later"

        fake_telegram.block(6)
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(6, "anyone there?")

        await bot.send_document(5, BufferedInputFile(b"call notes", filename="notes.txt"))
        upload = fake_telegram.calls_to("sendDocument")[-1]
        assert upload.content_type == "multipart/form-data"
        assert b"call notes" in upload.files.values()
        assert await bot.send_chat_action(5, "typing") is True
    finally:
        await bot.session.close()

    stranger = Bot(
        "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        session=AiohttpSession(api=TelegramAPIServer.from_base(fake_telegram.url)),
    )
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    # A JSON body works too.
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake_telegram.url}/bot{TOKEN}/answerCallbackQuery", json={"callback_query_id": "1"}
        )
    assert response.json() == {"ok": True, "result": True}


async def test_the_webhook_route_checks_both_secrets_then_handles_updates(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    bot_settings: Settings,
    fake_telegram: FakeTelegram,
) -> None:
    path = f"/webhooks/telegram/{webhook_path_secret(bot_settings.telegram)}"
    # The app registered its webhook (with the secret Telegram must send back) at start-up.
    registered = fake_telegram.calls_to("setWebhook")[-1].params
    assert registered["url"] == f"{bot_settings.web.public_url}{path}"
    assert registered["secret_token"] == WEBHOOK_SECRET
    assert "message" in registered["allowed_updates"] and "callback_query" in registered["allowed_updates"]

    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga, petr = telegram_user(), telegram_user()
    good = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}

    async def post(update: dict[str, object], url: str = path, headers: dict[str, str] | None = None) -> int:
        response = await bot_http.post(url, json=update, headers=headers if headers is not None else good)
        return response.status_code

    linking = fake_telegram.message(olga, f"/start {code_in(await deep_link(bot_http, romashka))}")
    assert await post(linking, url="/webhooks/telegram/wrong-path-secret") == 404
    assert await post(linking, headers={}) == 403
    assert await post(linking, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong" + WEBHOOK_SECRET}) == 403
    assert fake_telegram.texts_to(olga) == []  # nothing refused reached the bot

    assert await post(linking) == 200
    assert await post(fake_telegram.message(petr, f"/start {code_in(await deep_link(bot_http, lyutik))}")) == 200
    assert await post(fake_telegram.message(olga, "/start")) == 200
    assert await post(fake_telegram.message(petr, "/company")) == 200
    assert fake_telegram.texts_to(olga) == [
        RU("link.done", company="Ромашка", name="Olga Petrova"),
        RU("start.hello", company="Ромашка", name="Olga Petrova"),
    ]
    assert fake_telegram.texts_to(petr) == [
        RU("link.done", company="Лютик", name="Olga Petrova"),
        RU("company.only", company="Лютик"),
    ]

    response = await bot_http.post(path, content=b"not json", headers=good)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    # The suite's plain app has no bot: the route is not there.
    assert (await http.post(path, json=linking, headers=good)).status_code == 404


async def test_a_whole_conversation_through_the_webhook_route(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    bot_settings: Settings,
    fake_telegram: FakeTelegram,
) -> None:
    """find → card → log a call (outcome, comment, next step) as Telegram would deliver it:
    each update a separate POST, the conversation's state kept between them."""
    path = f"/webhooks/telegram/{webhook_path_secret(bot_settings.telegram)}"
    good = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ours = await create_client(http, romashka.auth, name="Анна Веткина", phones=["+7 495 111-22-33"])
    await create_client(http, lyutik.auth, name="Анна Веткина", phones=["+7 495 111-22-33"])
    olga, petr = telegram_user(), telegram_user()

    async def send(update: dict[str, object]) -> list[str]:
        mark = len(fake_telegram.calls)
        response = await bot_http.post(path, json=update, headers=good)
        assert response.status_code == 200, response.text
        return [
            str(call.params["text"])
            for call in fake_telegram.calls[mark:]
            if call.method.lower() in ("sendmessage", "editmessagetext") and "text" in call.params
        ]

    await send(fake_telegram.message(olga, f"/start {code_in(await deep_link(bot_http, romashka))}"))
    await send(fake_telegram.message(petr, f"/start {code_in(await deep_link(bot_http, lyutik))}"))
    assert await send(fake_telegram.message(olga, "Веткина")) == [WORK("find.found", q="Веткина")]
    [card] = await send(fake_telegram.button_press(olga, ClientCardOpen(client_id=ours["id"]).pack()))
    assert card.startswith("Анна Веткина")
    start = fake_telegram.button_press(olga, CallLogStart(client_id=ours["id"]).pack())
    assert await send(start) == [WORK("call.outcome", client="Анна Веткина")]
    assert await send(fake_telegram.button_press(olga, CallOutcomePick(index=0).pack())) == [WORK("call.comment")]
    [question] = await send(fake_telegram.message(olga, "Перезвонить после обеда"))
    assert question.startswith(WORK("call.next_required"))
    [saved] = await send(fake_telegram.button_press(olga, CallNextStep(days=3).pack()))
    assert saved.startswith(WORK("call.saved_task", title="Связаться: Анна Веткина", when="")[:-1])

    [call] = (await http.get(f"/api/v1/clients/{ours['id']}/card", headers=romashka.auth)).json()["timeline"]
    assert (call["kind"], call["comment"]) == ("call", "Перезвонить после обеда")
    # The other company's user, mid-nothing, pressing the same buttons gets nothing of it.
    assert await send(fake_telegram.button_press(petr, CallNextStep(days=3).pack())) == []
    lyutik_card = (await http.get("/api/v1/activities", headers=lyutik.auth)).json()
    assert lyutik_card["items"] == []


async def test_polling_takes_the_queued_updates(
    make_tenant: TenantFactory,
    bot_http: httpx.AsyncClient,
    bot_settings: Settings,
    fake_telegram: FakeTelegram,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga, petr = telegram_user(), telegram_user()
    runtime = create_runtime(services, replace(bot_settings.telegram, webhook_secret=None))
    polling = asyncio.create_task(poll_updates(runtime))
    try:
        await fake_telegram.queue_update(
            fake_telegram.message(olga, f"/start {code_in(await deep_link(bot_http, romashka))}")
        )
        await fake_telegram.queue_update(fake_telegram.message(petr, "/help", language_code="en"))
        await eventually(lambda: len(fake_telegram.texts_to(olga)) == 1 and len(fake_telegram.texts_to(petr)) == 1)
        await fake_telegram.queue_update(fake_telegram.message(olga, "/help"))
        await eventually(lambda: len(fake_telegram.texts_to(olga)) == 2)
    finally:
        await runtime.dispatcher.stop_polling()
        await polling
        await runtime.close()
    assert fake_telegram.texts_to(olga) == [RU("link.done", company="Ромашка", name="Olga Petrova"), RU("help")]
    assert fake_telegram.texts_to(petr) == [EN("refused")]
    assert fake_telegram.calls_to("deleteWebhook")
    assert {call.params.get("language_code") for call in fake_telegram.calls_to("setMyCommands")} == {None, "ru"}
    # Lyutik's admin never linked anything.
    assert (
        await services.db.pool.fetchval(
            "SELECT count(*) FROM platform.telegram_links l JOIN platform.tenants t ON t.id = l.tenant_id"
            " WHERE t.slug = $1",
            lyutik.slug,
        )
        == 0
    )


async def test_a_failing_handler_is_answered_and_its_transaction_rolled_back(
    make_tenant: TenantFactory, bot_http: httpx.AsyncClient, chat: Conversation, services: Services
) -> None:
    romashka = await make_tenant(company="Ромашка")
    await make_tenant(company="Лютик")
    olga = telegram_user()
    await chat.say(olga, f"/start {code_in(await deep_link(bot_http, romashka))}")

    async def breaks_halfway(message: Message) -> None:
        from crm.platform.tenancy import scope_connection

        await scope_connection().execute("UPDATE users SET name = 'half-done'")
        raise RuntimeError("a bug")

    chat.dispatcher.message.register(breaks_halfway, Command("boom"))
    assert await chat.say(olga, "/boom") == [RU("error")]
    assert await chat.say(olga, "/start") == [RU("start.hello", company="Ромашка", name="Olga Petrova")]
