"""The Telegram bot's foundation: linking an account with a one-time code, /logout,
/company between two companies, /lang, and strangers learning nothing. Updates go through
``Dispatcher.feed_webhook_update``; the bot's calls reach a fake Bot API server through
aiogram's real HTTP session. Every test uses two companies and checks they never mix."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import StorageKey

from crm.bot.callbacks import CompanyChoice, LanguageChoice
from crm.bot.dispatcher import create_bot, create_dispatcher
from crm.bot.links import code_hash
from crm.bot.storage import CONVERSATION_KEPT, KEY_BUILDER, PostgresStorage, storage_for
from crm.bot.texts import Texts
from crm.platform.app import create_app
from crm.platform.services import Services
from crm.platform.worker.scheduler import Scheduler
from crm.settings import Secret, Settings, SettingsError, TelegramSettings, load_settings
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.fakes.telegram import FakeTelegram
from tests.support import serve

TOKEN = "4242424242:AAE_fake-token-for-tests_0123456789"
WEBHOOK_SECRET = "webhook-secret-for-tests_0123456789"
RU, EN = Texts("ru"), Texts("en")


@pytest.fixture(scope="module")
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture(scope="module")
def bot_settings(settings: Settings, fake_telegram: FakeTelegram) -> Settings:
    telegram = TelegramSettings(
        token=Secret(TOKEN), api_base=fake_telegram.url, webhook_secret=Secret(WEBHOOK_SECRET), bot_username=None
    )
    return replace(settings, telegram=telegram)


@pytest.fixture(scope="module")
async def bot_base_url(bot_settings: Settings, services: Services) -> AsyncIterator[str]:
    """The web app with the bot configured (webhook mode), beside the suite's plain app."""
    async with serve(create_app(bot_settings, services=services, run_timers=False)) as url:
        yield url


@pytest.fixture
async def bot_http(bot_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bot_base_url, timeout=30) as client:
        yield client


@dataclass
class Conversation:
    """Feeds updates to a dispatcher and reads what the bot said back (from the fake)."""

    fake: FakeTelegram
    bot: Bot
    dispatcher: Dispatcher

    async def feed(self, update: dict[str, Any]) -> list[str]:
        mark = len(self.fake.calls)
        await self.dispatcher.feed_webhook_update(self.bot, update)
        replies = []
        for call in self.fake.calls[mark:]:
            if (
                call.method.lower() in ("sendmessage", "editmessagetext", "answercallbackquery")
                and "text" in call.params
            ):
                replies.append(str(call.params["text"]))
        return replies

    async def say(self, user_id: int, text: str, **extra: Any) -> list[str]:
        return await self.feed(self.fake.message(user_id, text, **extra))

    async def press(self, user_id: int, data: str) -> list[str]:
        return await self.feed(self.fake.button_press(user_id, data))


@pytest.fixture
async def chat(bot_settings: Settings, services: Services, fake_telegram: FakeTelegram) -> AsyncIterator[Conversation]:
    bot = create_bot(bot_settings.telegram)
    try:
        yield Conversation(fake_telegram, bot, create_dispatcher(services))
    finally:
        await bot.session.close()


def telegram_user() -> int:
    """A Telegram account id of this test's own (the database is shared by the run)."""
    return 10**9 + secrets.randbelow(10**9)


async def deep_link(bot_http: httpx.AsyncClient, company: SignedUpTenant | dict[str, str]) -> str:
    auth = company.auth if isinstance(company, SignedUpTenant) else company
    response = await bot_http.post("/api/v1/me/telegram-link", headers=auth)
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


def code_in(url: str) -> str:
    return url.split("?start=", 1)[1]


async def audit_actions(
    http: httpx.AsyncClient, company: SignedUpTenant, *, prefix: str = "telegram."
) -> list[tuple[str, str]]:
    """(action, channel) of the company's audit rows whose action starts with ``prefix``, newest first."""
    response = await http.get("/api/v1/audit", headers=company.auth, params={"limit": "100"})
    assert response.status_code == 200, response.text
    return [(row["action"], row["channel"]) for row in response.json()["items"] if row["action"].startswith(prefix)]


async def test_a_code_links_once_and_expired_or_reused_codes_are_refused(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    chat: Conversation,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    url = await deep_link(bot_http, romashka)
    assert url.startswith(f"https://t.me/{chat.fake.username}?start=")
    code = code_in(url)
    assert len(code) <= 64 and code.replace("-", "").replace("_", "").isalnum()
    # Only the code's hash is kept.
    stored = await services.db.pool.fetchval(
        "SELECT count(*) FROM platform.telegram_link_codes WHERE code_hash = $1", code_hash(code)
    )
    assert stored == 1
    assert (
        await services.db.pool.fetchval("SELECT count(*) FROM platform.telegram_link_codes WHERE code_hash = $1", code)
        == 0
    )

    olga, stranger = telegram_user(), telegram_user()
    assert await chat.say(olga, f"/start {code}") == [RU("link.done", company="Ромашка", name="Olga Petrova")]
    assert await chat.say(olga, "/start") == [RU("start.hello", company="Ромашка", name="Olga Petrova")]
    # Used once: a second use, by anyone, is refused and links nothing.
    assert await chat.say(stranger, f"/start {code}") == [RU("link.used")]
    assert await chat.say(stranger, "/help") == [RU("refused")]

    expiring = code_in(await deep_link(bot_http, lyutik))
    await services.db.pool.execute(
        "UPDATE platform.telegram_link_codes SET expires_at = now() - interval '1 second' WHERE code_hash = $1",
        code_hash(expiring),
    )
    assert await chat.say(stranger, f"/start {expiring}") == [RU("link.expired")]
    assert await chat.say(stranger, "/start made-up-code-0123456789") == [RU("link.invalid")]
    assert await chat.say(stranger, "/start ../../etc/passwd") == [RU("link.invalid")]

    # A new link replaces the user's unused one.
    first = code_in(await deep_link(bot_http, lyutik))
    second = code_in(await deep_link(bot_http, lyutik))
    assert await chat.say(stranger, f"/start {first}") == [RU("link.invalid")]
    assert await chat.say(stranger, f"/start {second}") == [RU("link.done", company="Лютик", name="Olga Petrova")]

    # Each company's audit log has its own link, made through the bot, and nothing else.
    assert await audit_actions(http, romashka) == [("telegram.linked", "bot"), ("telegram.link_requested", "api")]
    assert await audit_actions(http, lyutik) == [
        ("telegram.linked", "bot"),
        ("telegram.link_requested", "api"),
        ("telegram.link_requested", "api"),
        ("telegram.link_requested", "api"),
    ]


async def test_company_switches_between_two_companies_and_logout_unbinds(
    make_tenant: TenantFactory, bot_http: httpx.AsyncClient, chat: Conversation, services: Services
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик", admin_name="Пётр Лютиков")
    olga = telegram_user()
    assert await chat.say(olga, f"/start {code_in(await deep_link(bot_http, romashka))}") == [
        RU("link.done", company="Ромашка", name="Olga Petrova")
    ]
    # The company linked last is the one the bot works in.
    await chat.say(olga, f"/start {code_in(await deep_link(bot_http, lyutik))}")
    assert await chat.say(olga, "/start") == [RU("start.hello", company="Лютик", name="Пётр Лютиков")]

    mark = len(chat.fake.calls)
    assert await chat.say(olga, "/company") == [RU("company.choose", company="Лютик")]
    keyboard = chat.fake.calls[mark:][-1].params["reply_markup"]["inline_keyboard"]
    buttons = {row[0]["text"]: row[0]["callback_data"] for row in keyboard}
    assert set(buttons) == {"Ромашка", "✓ Лютик"}

    assert await chat.press(olga, buttons["Ромашка"]) == [RU("company.switched", company="Ромашка")]
    assert await chat.say(olga, "/start") == [RU("start.hello", company="Ромашка", name="Olga Petrova")]

    # A forged button for a company this account is not linked to reaches nothing.
    other = await make_tenant(company="Василёк")
    other_id = await services.db.pool.fetchval("SELECT id FROM platform.tenants WHERE slug = $1", other.slug)
    assert await chat.press(olga, CompanyChoice(tenant_id=other_id).pack()) == [RU("company.gone")]
    assert await chat.say(olga, "/start") == [RU("start.hello", company="Ромашка", name="Olga Petrova")]

    # /logout leaves the current company; the other one takes over.
    assert await chat.say(olga, "/logout") == [
        RU("logout.done", company="Ромашка") + "\n" + RU("logout.next", company="Лютик")
    ]
    assert await chat.say(olga, "/company") == [RU("company.only", company="Лютик")]
    assert await chat.say(olga, "/logout") == [RU("logout.done", company="Лютик")]
    assert await chat.say(olga, "/help") == [RU("refused")]
    links = await services.db.pool.fetchval(
        "SELECT count(*) FROM platform.telegram_links WHERE telegram_user_id = $1", olga
    )
    assert links == 0


async def test_strangers_and_deactivated_users_learn_nothing(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    bot_http: httpx.AsyncClient,
    chat: Conversation,
    services: Services,
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    ivan = await add_staff(http, romashka, "ivan")
    ivan_telegram, lyutik_telegram, stranger = telegram_user(), telegram_user(), telegram_user()
    await chat.say(ivan_telegram, f"/start {code_in(await deep_link(bot_http, ivan.auth))}", language_code="en")
    await chat.say(lyutik_telegram, f"/start {code_in(await deep_link(bot_http, lyutik))}", language_code="en")
    assert await chat.say(ivan_telegram, "/help", language_code="en") == [EN("help")]  # operators' locale is en

    response = await http.post(f"/api/v1/users/{ivan.id}/deactivate", headers=romashka.auth)
    assert response.status_code == 200, response.text
    assert (
        await services.db.pool.fetchval(
            "SELECT count(*) FROM platform.telegram_links WHERE telegram_user_id = $1", ivan_telegram
        )
        == 0
    )

    for command in ("/help", "/start", "/company", "/logout", "hello"):
        assert await chat.say(ivan_telegram, command, language_code="en") == [EN("refused")]
        assert await chat.say(stranger, command, language_code="en") == [EN("refused")]
    # Buttons too: the same short alert, whatever the button claims.
    for data in (CompanyChoice(tenant_id="x" * 12).pack(), LanguageChoice(locale="en").pack(), "garbage"):
        assert await chat.press(ivan_telegram, data) == [RU("refused.short")]
        assert await chat.press(stranger, data) == [RU("refused.short")]
    # Groups are ignored altogether.
    assert await chat.say(lyutik_telegram, "/help", chat_type="group") == []
    # The other company's user is unaffected.
    assert await chat.say(lyutik_telegram, "/help", language_code="en") == [RU("help")]


async def test_language_is_the_profile_setting_and_audited(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient, chat: Conversation
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    olga = telegram_user()
    await chat.say(olga, f"/start {code_in(await deep_link(bot_http, romashka))}")
    assert await chat.say(olga, "/lang") == [RU("lang.choose")]
    assert await chat.press(olga, LanguageChoice(locale="en").pack()) == [EN("lang.set")]
    assert await chat.say(olga, "/help") == [EN("help")]
    me = await http.get("/api/v1/me", headers=romashka.auth)
    assert me.json()["user"]["locale"] == "en"
    assert (await http.get("/api/v1/me", headers=lyutik.auth)).json()["user"]["locale"] == "ru"
    # Changed through the profile's service function, audited as done from the bot.
    assert ("user.updated", "bot") in await audit_actions(http, romashka, prefix="user.")
    assert [row for row in await audit_actions(http, lyutik, prefix="") if row[1] == "bot"] == []


async def test_the_link_endpoint_needs_a_token_and_a_configured_bot(
    make_tenant: TenantFactory, http: httpx.AsyncClient, bot_http: httpx.AsyncClient
) -> None:
    company = await make_tenant()
    assert (await bot_http.post("/api/v1/me/telegram-link")).status_code == 401
    # The suite's plain app has no bot token.
    response = await http.post("/api/v1/me/telegram-link", headers=company.auth)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/telegram-not-configured")


async def test_conversation_state_survives_a_new_storage(services: Services) -> None:
    key = StorageKey(bot_id=1, chat_id=telegram_user(), user_id=telegram_user())
    first = PostgresStorage(services.db.pool)
    await first.set_state(key, "log_call:comment")
    await first.set_data(key, {"client_id": 7, "note": "перезвонить"})
    again = PostgresStorage(services.db.pool)  # as after a restart
    assert await again.get_state(key) == "log_call:comment"
    assert await again.get_data(key) == {"client_id": 7, "note": "перезвонить"}
    await again.set_state(key, None)
    await again.set_data(key, {})
    assert await first.get_state(key) is None and await first.get_data(key) == {}
    rows = await services.db.pool.fetchval(
        "SELECT count(*) FROM platform.bot_fsm WHERE key LIKE $1", f"%:{key.chat_id}:%"
    )
    assert rows == 0


async def test_abandoned_conversations_are_forgotten_by_the_scheduler(services: Services) -> None:
    storage = PostgresStorage(services.db.pool)
    abandoned = StorageKey(bot_id=1, chat_id=telegram_user(), user_id=telegram_user())
    current = StorageKey(bot_id=1, chat_id=telegram_user(), user_id=telegram_user())
    for key in (abandoned, current):
        await storage.set_state(key, "log_call:comment")
        await storage.set_data(key, {"client_id": 7})
    await services.db.pool.execute(
        "UPDATE platform.bot_fsm SET updated_at = now() - $2::interval WHERE key = $1",
        KEY_BUILDER.build(abandoned),
        CONVERSATION_KEPT + timedelta(hours=1),
    )
    scheduler = Scheduler(services.db.pool, "postgresql://unused", lambda groups: None)
    assert await scheduler.housekeeping() >= 1
    assert await storage.get_state(abandoned) is None and await storage.get_data(abandoned) == {}
    assert await storage.get_state(current) == "log_call:comment"
    await storage.set_state(current, None)
    await storage.set_data(current, {})


async def test_redis_conversations_expire() -> None:
    url = os.environ.get("CRM_TEST_REDIS_URL")
    if not url:
        pytest.skip("CRM_TEST_REDIS_URL is not set")
    storage = storage_for(load_settings({**SETTINGS_BASE, "CRM_BROKER_URL": url}), pool=None)
    key = StorageKey(bot_id=1, chat_id=telegram_user(), user_id=telegram_user())
    try:
        await storage.set_state(key, "log_call:comment")
        assert await storage.get_state(key) == "log_call:comment"
        redis = storage.redis  # type: ignore[attr-defined]
        ttl = await redis.ttl(KEY_BUILDER.build(key, "state"))
        assert 0 < ttl <= CONVERSATION_KEPT.total_seconds()
        await storage.set_state(key, None)
    finally:
        await storage.close()


SETTINGS_BASE = {"CRM_SECRET_KEY": "k" * 40, "CRM_DATA_DIR": "/tmp/crm-settings-test"}  # noqa: S108


def test_telegram_settings_are_checked() -> None:
    base = SETTINGS_BASE
    assert load_settings(base).telegram.mode == "off"
    polling = load_settings({**base, "CRM_TELEGRAM_BOT_TOKEN": TOKEN, "CRM_TELEGRAM_BOT_USERNAME": "@relay_bot"})
    assert polling.telegram.mode == "polling" and polling.telegram.bot_username == "relay_bot"
    assert TOKEN not in repr(polling.telegram)
    webhook = load_settings({**base, "CRM_TELEGRAM_BOT_TOKEN": TOKEN, "CRM_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET})
    assert webhook.telegram.mode == "webhook"
    for name, value in (
        ("CRM_TELEGRAM_BOT_TOKEN", "not-a-token"),
        ("CRM_TELEGRAM_WEBHOOK_SECRET", "short"),
        ("CRM_TELEGRAM_API_BASE", "ftp://example"),
        ("CRM_TELEGRAM_BOT_USERNAME", "1 bad name"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({**base, name: value})
