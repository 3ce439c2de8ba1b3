"""The Telegram bot at 200,000 clients: find → card latency, updates per second, and the
sender against Telegram's flood limits, all against the fake Bot API server.

    CRM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.bot [--quick]

The world is ``bench/crm_data.py``'s (the big company: 60 users, 200,000 clients, 2,000,000
activities, 500,000 tasks; ``--quick``: 5,000 clients). Users of the big company are linked
to Telegram accounts through the product's own path: a one-time code (what
``POST /api/v1/me/telegram-link`` issues) spent by ``/start <code>`` fed to the dispatcher.
The bot is ``create_dispatcher(services)`` with a real aiogram ``Bot`` whose HTTP session
points at ``tests/fakes/telegram.py``'s server on a loopback port, in this process and
event loop (its work shares the two cores with the bot's). The fake here also notes when
each call reaches it (``TimedFake``).

(1) Find → card: per user (the admin, scope ``all``; a manager, scope ``own``), N text
    messages built from the clients the user may read (ten kinds: surnames, company names,
    full names, phones in three spellings, e-mails, tax ids, misspellings), each followed
    by a press of the first client button of the bot's answer (a random readable client
    when nothing was found). Each is fed to ``Dispatcher.feed_webhook_update``; the timer
    starts just before the call (the update as a dict, so parsing is included) and stops
    (a) when the bot's ``sendMessage`` — the list of hits, or the card — reaches the fake:
    "update in → API call out"; (b) when the feed call returns, which adds the round trip
    of that reply and, for a card, the ``answerCallbackQuery`` after it. Baseline,
    interleaved with the bot iteration by iteration (order alternating): the same
    ``search()`` and ``client_card()`` service functions called directly in a tenant scope,
    with the same text and client. Then one pass with every asyncpg call timed, and
    cProfile of the bot's find → card.
(2) Updates per second: bursts of U updates from the linked users (a third each: /today,
    a search text, a card button on a client the user may read) fed concurrently, at most
    K in flight (Telegram's webhook default is 40 connections): (a) straight into
    ``feed_webhook_update``; (b) posted over HTTP to the web app's webhook route
    (``create_app`` under uvicorn on a loopback port, aiohttp as the client, the secret
    path and header). Baselines, same sizes and paths: ``/help`` from linked users
    (middleware, tenant scope, principal, one reply) and a message from strangers (one
    platform query, the refusal). Rounds rotate the order; medians of the rounds.
(3) The sender at 30 messages/s: the fake enforces Telegram's flood limits (more than 30
    messages in any second, or a second message to a chat within a second, is answered
    429). Notices for C chats (users with ``notify_channels = {telegram}``; task reminders
    for their open tasks, plain notices for the rest) go through ``notify_many``, which
    queues one ``telegram.send`` timer each (crm/bot/channel.py), in two orders: shuffled,
    and each chat's notices in a row (a user's reminders of one minute). Then W loops of
    ``run_due(limit=1)`` (a worker process with W threads, one process-wide ``SendLimiter``)
    run them until none is left. Figures, from the fake's arrival times: messages/s
    accepted (first to last), 429s, time to drain, the busiest second, the closest two
    messages to one chat, and the timers queued again (a busy chat's notice comes back for
    its slot; a 429's a second later). Baseline: the same messages sent by W bare loops
    through the same ``SendLimiter`` policy and Bot API client (no database, no timers) to
    a fresh enforcing fake.

Options: ``--sections latency,updates,sender``; ``--chats`` and ``--per-chat`` for (3).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import aiohttp
import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramRetryAfter
from aiohttp import web

import crm.tenants.jobs  # noqa: F401 - registers the timer handlers, as a worker does
from bench.common import (
    BENCH_PASSWORD,
    BenchDatabase,
    bench_database,
    ms,
    open_bench_services,
    percentile,
    server_version,
)
from bench.crm_core import Request, python_profile, readable_clients, search_queries, tracing, where_time_goes
from bench.crm_data import FULL as FULL_WORLD
from bench.crm_data import QUICK as QUICK_WORLD
from bench.crm_data import Sizes as WorldSizes
from bench.crm_data import World, build_world
from crm.bot.callbacks import ClientCardOpen
from crm.bot.channel import install_telegram, uninstall_telegram
from crm.bot.dispatcher import create_bot, create_dispatcher
from crm.bot.links import issue_link_code
from crm.bot.routers.clients import RESULTS
from crm.bot.runtime import WEBHOOK_PATH, webhook_path_secret
from crm.bot.sender import BOT_RATE, MARGIN, MAX_CHAT_WAIT, SEND_KIND, SendLimiter
from crm.bot.texts import Texts
from crm.bot.webhook import SECRET_HEADER
from crm.platform.app import create_app
from crm.platform.auth import Principal, principal_of_user
from crm.platform.observability import configure_logging
from crm.platform.passwords import hash_password
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import run_due
from crm.settings import Secret, Settings, TelegramSettings, load_settings
from crm.tenants.card.services import client_card
from crm.tenants.notifications.channels import Notice, notify_many
from crm.tenants.notifications.recipients import Recipient, load_recipient
from crm.tenants.notifications.texts import reminder_notice
from crm.tenants.search.services import search
from tests.fakes.telegram import Call, FakeTelegram
from tests.support import serve

TOKEN = "4242424242:AAE_bench-token-for-the-fake_0123456789"
WEBHOOK_SECRET = "bench-webhook-secret_0123456789"
LATENCY_P95_GOAL = 0.100
UPDATES_GOAL = 200.0
SEND_RATE_GOAL = 30.0
FIRST_ACCOUNT = 7_000_000_000  # Telegram account ids of the linked users
FIRST_STRANGER = 8_000_000_000  # accounts linked to nobody


@dataclass(frozen=True)
class Sizes:
    world: WorldSizes
    iterations: int  # (1) find → card per user
    warmup: int
    traced: int  # (1) iterations traced and profiled
    updates: int  # (2) per burst
    senders: int  # (2) linked users sending
    in_flight: int  # (2) at most this many updates at once
    rounds: int  # (2)
    chats: int  # (3)
    per_chat: int  # (3) messages to each chat
    send_workers: int  # (3) concurrent timer loops, like a worker's threads


FULL = Sizes(FULL_WORLD, 300, 20, 50, 2000, 50, 40, 2, 100, 6, 8)
QUICK = Sizes(QUICK_WORLD, 30, 5, 10, 300, 20, 40, 1, 25, 4, 8)


# --- the fake, with arrival times -------------------------------------------------------------


@dataclass
class TimedFake(FakeTelegram):
    """The fake Bot API server, also noting when each call reached it (``perf_counter``), at
    the index of the call in ``calls``."""

    arrivals: list[float] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        response = await super()._handle(request)
        # Nothing awaited since the call was appended: the same index in both lists.
        self.arrivals.append(arrived)
        return response

    def since(self, mark: int) -> list[tuple[Call, float]]:
        return list(zip(self.calls[mark:], self.arrivals[mark:], strict=True))


@contextlib.asynccontextmanager
async def running_fake() -> AsyncIterator[TimedFake]:
    fake = TimedFake(TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def bot_settings(database: BenchDatabase, fake: FakeTelegram) -> Settings:
    """The bench database's settings with the bot on the fake, in webhook mode."""
    return load_settings(
        database.env(
            CRM_TELEGRAM_BOT_TOKEN=TOKEN, CRM_TELEGRAM_API_BASE=fake.url, CRM_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET
        )
    )


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def row(label: str, values: Sequence[float], goal: float | None = None) -> str:
    text = f"    {label:46} p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}"
    text += f"  max {ms(max(values))}"
    if goal is not None:
        text += f"   p95 < {goal * 1000:.0f} ms: {'met' if percentile(values, 95) < goal else 'MISSED'}"
    return text


# --- the linked users -------------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    user_id: int
    account: int  # Telegram user id, also the private chat's id
    principal: Principal


async def add_users(tenant: TenantRef, count: int) -> list[int]:
    """``count`` more managers (no department) in the company, for chats beyond its 60 users."""
    if count <= 0:
        return []
    password_hash = await hash_password(BENCH_PASSWORD)
    async with tenant_scope(tenant):
        connection = scope_connection()
        rows = await connection.fetch(
            "INSERT INTO users (email, name, password_hash, locale, timezone, role)"
            " SELECT 'bot' || g || '@' || $1 || '.example', 'Сотрудник бота ' || g, $2, 'ru', 'Europe/Moscow',"
            " 'manager' FROM generate_series(1, $3) g RETURNING id, email",
            tenant.slug,
            password_hash,
            count,
        )
        await connection.executemany(
            "INSERT INTO platform.identities (email, tenant_id, user_id) VALUES ($1, $2, $3)",
            [(r["email"], tenant.id, r["id"]) for r in rows],
        )
    return [int(r["id"]) for r in rows]


async def link_accounts(
    pool: asyncpg.Pool, fake: FakeTelegram, bot: Bot, dispatcher: Dispatcher, tenant: TenantRef, user_ids: list[int]
) -> list[Linked]:
    """A Telegram account for each user, linked the product's way: a one-time code spent by
    ``/start <code>`` through the dispatcher."""
    linked: list[Linked] = []
    for index, user_id in enumerate(user_ids):
        async with tenant_scope(tenant):
            code = await issue_link_code(tenant.id, user_id)
        account = FIRST_ACCOUNT + index
        await dispatcher.feed_webhook_update(bot, fake.message(account, f"/start {code.code}"))
        async with tenant_scope(tenant):
            principal = await principal_of_user(tenant, user_id)
        assert principal is not None
        linked.append(Linked(user_id, account, principal))
    count = await pool.fetchval(
        "SELECT count(*) FROM platform.telegram_links WHERE tenant_id = $1 AND telegram_user_id = ANY($2::bigint[])",
        tenant.id,
        [who.account for who in linked],
    )
    assert count == len(linked), f"{count} of {len(linked)} accounts linked"
    return linked


# --- (1) find → card latency ------------------------------------------------------------------


def first_client_button(calls: list[tuple[Call, float]]) -> int | None:
    """The client of the first button of the keyboard the bot sent, if any."""
    for call, _ in calls:
        markup = call.params.get("reply_markup")
        if call.method.lower() == "sendmessage" and isinstance(markup, dict):
            for line in markup.get("inline_keyboard", []):
                for button in line:
                    data = str(button.get("callback_data", ""))
                    if data.startswith(ClientCardOpen.__prefix__ + ":"):
                        return ClientCardOpen.unpack(data).client_id
    return None


@dataclass
class BotProbe:
    fake: TimedFake
    bot: Bot
    dispatcher: Dispatcher

    async def feed(self, update: dict[str, Any]) -> tuple[float, float, list[tuple[Call, float]]]:
        """(seconds to the first sendMessage reaching the fake, seconds to the feed call's
        return, the calls made); the first is the second when nothing was sent."""
        mark = len(self.fake.calls)
        started = time.perf_counter()
        await self.dispatcher.feed_webhook_update(self.bot, update)
        returned = time.perf_counter() - started
        calls = self.fake.since(mark)
        answered = next((at - started for call, at in calls if call.method.lower() == "sendmessage"), returned)
        return answered, returned, calls


async def direct_search(tenant: TenantRef, principal: Principal, text: str) -> tuple[float, int | None]:
    """The bot's search call made directly: (seconds, first client hit)."""
    started = time.perf_counter()
    async with tenant_scope(tenant):
        hits = await search(principal, text, RESULTS * 2)
    elapsed = time.perf_counter() - started
    return elapsed, next((hit.id for hit in hits if hit.type == "client"), None)


async def direct_card(tenant: TenantRef, principal: Principal, client_id: int) -> float:
    started = time.perf_counter()
    async with tenant_scope(tenant):
        await client_card(principal, client_id)
    return time.perf_counter() - started


async def find_then_card(
    probe: BotProbe,
    tenant: TenantRef,
    who: Linked,
    text: str,
    fallback: int,
    bot_first: bool,
    times: dict[str, list[float]],
) -> bool:
    """One iteration, bot and direct in the given order; whether the text found a client."""
    found: int | None = None
    searched = False

    async def bot_find() -> None:
        nonlocal found, searched
        answered, returned, calls = await probe.feed(probe.fake.message(who.account, text))
        times["bot find"].append(answered)
        times["bot find, feed returned"].append(returned)
        if not searched:
            found, searched = first_client_button(calls), True

    async def plain_search() -> None:
        nonlocal found, searched
        elapsed, hit = await direct_search(tenant, who.principal, text)
        times["direct search"].append(elapsed)
        if not searched:
            found, searched = hit, True

    for step in (bot_find, plain_search) if bot_first else (plain_search, bot_find):
        await step()
    client = found if found is not None else fallback

    async def bot_card() -> None:
        press = probe.fake.button_press(who.account, ClientCardOpen(client_id=client).pack())
        answered, returned, calls = await probe.feed(press)
        assert any(call.method.lower() == "sendmessage" for call, _ in calls), "the card was not sent"
        times["bot card"].append(answered)
        times["bot card, feed returned"].append(returned)

    async def plain_card() -> None:
        times["direct card"].append(await direct_card(tenant, who.principal, client))

    for step in (bot_card, plain_card) if bot_first else (plain_card, bot_card):
        await step()
    return found is not None


async def find_card_latency(
    probe: BotProbe,
    pool: asyncpg.Pool,
    tenant: TenantRef,
    users: dict[str, Linked],
    readable: dict[str, list[int]],
    sizes: Sizes,
    rng: random.Random,
) -> None:
    n, warmup = sizes.iterations, sizes.warmup
    print(
        f"\n(1) Find → card, {n} iterations per user after {warmup} warm-up: a text message, then a press of the"
        f" first client button; bot and direct service calls interleaved, order alternating; load {load()}"
    )
    for key, who in users.items():
        queries = await search_queries(rng, pool, tenant.schema, readable[key], n + warmup)
        fallbacks = [rng.choice(readable[key]) for _ in range(n + warmup)]
        times: dict[str, list[float]] = defaultdict(list)
        found = 0
        for index, (_, text) in enumerate(queries):
            if index == warmup:
                times.clear()
            hit = await find_then_card(probe, tenant, who, text, fallbacks[index], index % 2 == 0, times)
            found += hit and index >= warmup
        kinds = [kind for kind, _ in queries[warmup:]]
        print_latency(f"{key} ({who.principal.role}, {len(readable[key]):,} clients readable)", times, n, found)
        print_by_kind(kinds, times)


def print_latency(title: str, times: dict[str, list[float]], n: int, found: int) -> None:
    both = [a + b for a, b in zip(times["bot find"], times["bot card"], strict=True)]
    both_returned = [
        a + b for a, b in zip(times["bot find, feed returned"], times["bot card, feed returned"], strict=True)
    ]
    direct = [a + b for a, b in zip(times["direct search"], times["direct card"], strict=True)]
    print(f"  {title}:")
    print(row("bot find: update in → hits at the fake", times["bot find"], LATENCY_P95_GOAL))
    print(row("bot find: feed call returned", times["bot find, feed returned"]))
    print(row("bot card: button in → card at the fake", times["bot card"], LATENCY_P95_GOAL))
    print(row("bot card: feed call returned", times["bot card, feed returned"]))
    print(row("bot find + card (to the answers, summed)", both, LATENCY_P95_GOAL))
    print(row("bot find + card (feed calls, summed)", both_returned))
    print(row("baseline: search() directly", times["direct search"]))
    print(row("baseline: client_card() directly", times["direct card"]))
    print(row("baseline: search() + client_card()", direct))
    ratios = []
    for label, bot, plain in (
        ("find", times["bot find"], times["direct search"]),
        ("card", times["bot card"], times["direct card"]),
        ("find + card", both, direct),
    ):
        bot_p50, plain_p50 = percentile(bot, 50), percentile(plain, 50)
        ratios.append(f"{label} {bot_p50 / plain_p50:.2f}x (+{(bot_p50 - plain_p50) * 1000:.1f} ms)")
    print(f"    bot / direct, p50: {'; '.join(ratios)}")
    print(f"    texts that found a client: {found} of {n} (the others' card: a random client the user may read)")


def print_by_kind(kinds: list[str], times: dict[str, list[float]]) -> None:
    print("    by kind of text, p50 / p95 ms: bot find (to the answer) | direct search")
    for kind in dict.fromkeys(kinds):
        bot = [t for t, k in zip(times["bot find"], kinds, strict=True) if k == kind]
        plain = [t for t, k in zip(times["direct search"], kinds, strict=True) if k == kind]
        print(
            f"      {kind:28} {percentile(bot, 50) * 1000:6.1f} / {percentile(bot, 95) * 1000:6.1f}"
            f"  | {percentile(plain, 50) * 1000:6.1f} / {percentile(plain, 95) * 1000:6.1f}"
        )


async def where_bot_time_goes(
    probe: BotProbe, pool: asyncpg.Pool, tenant: TenantRef, who: Linked, readable: list[int], sizes: Sizes
) -> None:
    """The admin's find → card again with every asyncpg call timed, then under cProfile."""
    n = sizes.traced
    queries = await search_queries(random.Random(7), pool, tenant.schema, readable, n)
    fallback = random.Random(8).choice(readable)

    async def pair(index: int) -> None:
        text = queries[index % n][1]
        _, _, calls = await probe.feed(probe.fake.message(who.account, text))
        client = first_client_button(calls) or fallback
        await probe.feed(probe.fake.button_press(who.account, ClientCardOpen(client_id=client).pack()))

    print(f"  where the time goes, admin, {n} find → card pairs ({2 * n} updates), every asyncpg call timed:")
    with tracing() as trace:
        started = time.perf_counter()
        for index in range(n):
            await pair(index)
        total = time.perf_counter() - started
    where_time_goes(trace, 2 * n, total)
    print("  where the Python time goes (per find → card pair, fake server included):")
    await python_profile(cast(Request, pair), n)


# --- (2) updates per second -------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Awaitable[float]]


@dataclass(frozen=True)
class Burst:
    name: str
    make: Callable[[], list[dict[str, Any]]]


async def burst(send: Send, updates: list[dict[str, Any]], in_flight: int) -> tuple[float, list[float]]:
    """(updates/s, seconds each) for ``updates`` sent at most ``in_flight`` at a time."""
    gate = asyncio.Semaphore(in_flight)

    async def one(update: dict[str, Any]) -> float:
        async with gate:
            return await send(update)

    started = time.perf_counter()
    times = await asyncio.gather(*(one(update) for update in updates))
    return len(updates) / (time.perf_counter() - started), list(times)


def bursts(
    fake: FakeTelegram, linked: list[Linked], cards: dict[int, list[int]], texts: list[str], sizes: Sizes, seed: int
) -> list[Burst]:
    """The mix and its two baselines; each call of ``make`` builds a fresh burst."""
    rng = random.Random(seed)

    def mix() -> list[dict[str, Any]]:
        updates = []
        for index in range(sizes.updates):
            who = rng.choice(linked)
            kind = index % 3
            if kind == 0:
                updates.append(fake.message(who.account, "/today"))
            elif kind == 1:
                updates.append(fake.message(who.account, rng.choice(texts)))
            else:
                client = ClientCardOpen(client_id=rng.choice(cards[who.user_id])).pack()
                updates.append(fake.button_press(who.account, client))
        return updates

    def help_() -> list[dict[str, Any]]:
        return [fake.message(rng.choice(linked).account, "/help") for _ in range(sizes.updates)]

    def strangers() -> list[dict[str, Any]]:
        return [fake.message(FIRST_STRANGER + index, "Здравствуйте") for index in range(sizes.updates)]

    return [
        Burst("mix: /today, search text, card button", mix),
        Burst("baseline: /help, linked users", help_),
        Burst("baseline: a stranger's message", strangers),
    ]


def outcome(fake: TimedFake, mark: int, errors: set[str]) -> str:
    calls = fake.since(mark)
    methods = Counter(call.method for call, _ in calls)
    apologies = sum(1 for call, _ in calls if call.params.get("text") in errors)
    refused = sum(1 for call, _ in calls if call.status != 200)
    parts = ", ".join(f"{count} {method}" for method, count in methods.most_common())
    return f"{parts}; apologies for errors {apologies}; calls not 200: {refused}"


async def updates_per_second(
    services: Services,
    database: BenchDatabase,
    fake: TimedFake,
    probe: BotProbe,
    linked: list[Linked],
    cards: dict[int, list[int]],
    texts: list[str],
    sizes: Sizes,
) -> None:
    settings = bot_settings(database, fake)
    errors = {Texts(locale)("error") for locale in ("ru", "en")}
    print(
        f"\n(2) Updates per second: bursts of {sizes.updates} updates from {len(linked)} linked users,"
        f" at most {sizes.in_flight} in flight, {sizes.rounds} round(s), order rotating; load {load()}"
    )

    async def feed(update: dict[str, Any]) -> float:
        started = time.perf_counter()
        await probe.dispatcher.feed_webhook_update(probe.bot, update)
        return time.perf_counter() - started

    app = create_app(settings, services=services, run_timers=False)
    connector = aiohttp.TCPConnector(limit=sizes.in_flight)
    async with serve(app) as base_url, aiohttp.ClientSession(connector=connector) as session:
        url = f"{base_url}{WEBHOOK_PATH}/{webhook_path_secret(settings.telegram)}"
        headers = {SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"}

        async def post(update: dict[str, Any]) -> float:
            started = time.perf_counter()
            async with session.post(url, data=json.dumps(update), headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            return time.perf_counter() - started

        async def post_from_another_process(updates: list[dict[str, Any]]) -> tuple[float, list[float]]:
            """The same burst sent by bench/bot_sender.py in a process of its own, as Telegram
            would: the client's CPU is not this process's."""
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as file:
                json.dump(updates, file)
            try:
                sender = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.bot_sender",
                    url,
                    SECRET_HEADER,
                    WEBHOOK_SECRET,
                    file.name,
                    str(sizes.in_flight),
                    stdout=asyncio.subprocess.PIPE,
                )
                output, _ = await sender.communicate()
            finally:
                os.unlink(file.name)
            assert sender.returncode == 0, output
            result = json.loads(output)
            return float(result["rate"]), [float(seconds) for seconds in result["times"]]

        paths: dict[str, Send | None] = {
            "feed_webhook_update": feed,
            "HTTP webhook route": post,
            "HTTP, sender apart": None,  # post_from_another_process
        }
        kinds = bursts(fake, linked, cards, texts, sizes, seed=99)
        rates: dict[tuple[str, str], list[float]] = defaultdict(list)
        latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
        for round_ in range(sizes.rounds):
            for path, send in paths.items():
                shift = round_ % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    updates = kind.make()
                    mark = len(fake.calls)
                    if send is None:
                        rate, times = await post_from_another_process(updates)
                    else:
                        rate, times = await burst(send, updates, sizes.in_flight)
                    rates[(path, kind.name)].append(rate)
                    latencies[(path, kind.name)].extend(times)
                    print(f"    round {round_ + 1}, {path:20} {kind.name:40} {rate:7.0f} updates/s  (load {load()})")
                    print(f"      replies: {outcome(fake, mark, errors)}")
    print(f"  updates/s, median of {sizes.rounds} round(s); each update's time in the burst p50 / p95:")
    for path in paths:
        for kind in kinds:
            values = latencies[(path, kind.name)]
            rate = statistics.median(rates[(path, kind.name)])
            verdict = (
                f"   goal >= {UPDATES_GOAL:.0f}/s: {'met' if rate >= UPDATES_GOAL else 'MISSED'}"
                if kind is kinds[0]
                else ""
            )
            p50, p95 = ms(percentile(values, 50)), ms(percentile(values, 95))
            print(f"    {path:20} {kind.name:40} {rate:7.0f}/s   {p50} / {p95}{verdict}")
        mix = statistics.median(rates[(path, kinds[0].name)])
        ratios = ", ".join(
            f"{kind.name.split(': ')[1]} {mix / statistics.median(rates[(path, kind.name)]):.2f}x" for kind in kinds[1:]
        )
        print(f"    {path}: mix / baseline rate: {ratios}")


async def cards_for(
    tenant: TenantRef, linked: list[Linked], texts: list[str], world_ids: list[int]
) -> dict[int, list[int]]:
    """Clients each user may read (hits of the user's own searches), for the card buttons of
    the burst; a user who finds none presses a random client's button (an alert answers)."""
    cards: dict[int, list[int]] = {}
    for who in linked:
        ids: list[int] = []
        for text in texts:
            async with tenant_scope(tenant):
                ids += [hit.id for hit in await search(who.principal, text, RESULTS) if hit.type == "client"]
            if len(ids) >= 20:
                break
        cards[who.user_id] = ids or world_ids[:20]
    return cards


# --- (3) the sender against the flood limits --------------------------------------------------


async def notices_for(tenant: TenantRef, user_ids: list[int], per_chat: int) -> list[tuple[Recipient, Notice]]:
    """``per_chat`` notices per user: reminders of their open tasks, plain notices beyond."""
    deliveries: list[tuple[Recipient, Notice]] = []
    async with tenant_scope(tenant):
        connection = scope_connection()
        await connection.execute(
            "UPDATE users SET notify_channels = ARRAY['telegram']::varchar[] WHERE id = ANY($1::int[])", user_ids
        )
        for user_id in user_ids:
            user = await load_recipient(user_id)
            assert user is not None
            tasks = await connection.fetch(
                "SELECT id, title, due_at FROM tasks WHERE assignee_id = $1 AND status = 'open'"
                " ORDER BY due_at DESC LIMIT $2",
                user_id,
                per_chat,
            )
            for task in tasks:
                deliveries.append((user, reminder_notice(user, dict(task))))
            for index in range(per_chat - len(tasks)):
                deliveries.append((user, Notice(kind="digest", title=f"Сводка {index + 1}", body="Задачи на сегодня")))
    return deliveries


@dataclass(frozen=True)
class SendFigures:
    accepted: int
    refused: int
    rate: float  # accepted messages/s, first to last
    seconds: float  # from the start to the last accepted message
    busiest_second: int  # the most accepted messages in any one-second window
    closest_to_chat: float  # the shortest gap between two accepted messages to one chat
    refused_chat: int  # of the 429s: a chat written to less than a second before (approximate)
    per_chat: Counter[int]
    per_second: list[int]  # accepted messages in each second from the start


def send_figures(fake: TimedFake, mark: int, started: float) -> SendFigures:
    calls = sorted(
        ((at, call) for call, at in fake.since(mark) if call.method.lower() == "sendmessage"), key=lambda x: x[0]
    )
    accepted = [(at, int(call.params["chat_id"])) for at, call in calls if call.status == 200]
    times = [at for at, _ in accepted]
    busiest, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    last: dict[Any, float] = {}
    closest = float("inf")
    refused_chat = 0
    for at, call in calls:
        chat = call.params.get("chat_id")
        if call.status != 200:
            refused_chat += chat in last and at - last[chat] < 1.0
            continue
        if chat in last:
            closest = min(closest, at - last[chat])
        last[chat] = at
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return SendFigures(
        accepted=len(accepted),
        refused=sum(1 for _, call in calls if call.status != 200),
        rate=rate,
        seconds=(times[-1] - started) if times else 0.0,
        busiest_second=busiest,
        closest_to_chat=closest,
        refused_chat=refused_chat,
        per_chat=Counter(chat for _, chat in accepted),
        per_second=[
            sum(1 for at in times if second <= at - started < second + 1)
            for second in range(int(times[-1] - started) + 1)
        ]
        if times
        else [],
    )


def print_send(label: str, figures: SendFigures, expected: int) -> None:
    print(
        f"    {label:44} {figures.rate:5.1f} msg/s accepted, {figures.accepted}/{expected} delivered in"
        f" {figures.seconds:5.1f} s; 429s: {figures.refused} ({figures.refused_chat} to a chat written to < 1 s"
        f" before); busiest second {figures.busiest_second} msgs; closest two to one chat"
        f" {figures.closest_to_chat * 1000:.0f} ms"
    )
    print(f"      accepted in each second from the start: {' '.join(map(str, figures.per_second))}")


async def outstanding_sends(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM platform.timers WHERE kind = $1 AND state IN ('pending', 'queued', 'running')",
        SEND_KIND,
    )
    return count


async def drain_sends(pool: asyncpg.Pool, workers: int) -> None:
    """``workers`` loops of run_due until no telegram.send timer is left (429s come back later)."""

    async def loop() -> None:
        while True:
            if await run_due(pool, limit=1):
                continue
            if not await outstanding_sends(pool):
                return
            await asyncio.sleep(0.05)

    await asyncio.gather(*(loop() for _ in range(workers)))


async def send_timers(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM platform.timers WHERE kind = $1", SEND_KIND)
    return count


async def product_sender(
    pool: asyncpg.Pool, tenant: TenantRef, deliveries: list[tuple[Recipient, Notice]], workers: int
) -> tuple[SendFigures, float, int]:
    """(figures, seconds notify_many took to queue the timers, timers queued again)."""
    async with running_fake() as fake:
        fake.enforce_limits()
        settings = TelegramSettings(token=Secret(TOKEN), api_base=fake.url)
        install_telegram(settings)
        try:
            before = await send_timers(pool)
            started = time.perf_counter()
            async with tenant_scope(tenant):
                await notify_many(tenant, deliveries)
            queued = time.perf_counter() - started
            assert await outstanding_sends(pool) == len(deliveries)
            started = time.perf_counter()
            await drain_sends(pool, workers)
            figures = send_figures(fake, 0, started)
            assert figures.refused == fake.limit_refusals, (figures.refused, fake.limit_refusals)
            again = await send_timers(pool) - before - len(deliveries)
        finally:
            await uninstall_telegram()
    return figures, queued, again


async def bare_sender(messages: list[tuple[int, str]], workers: int) -> SendFigures:
    """The same messages through a SendLimiter and the Bot API client only, with the
    product's policy (a chat busy for a while: the message waits its turn off the loop; a
    429: the pause it asks for, then again) and no database."""
    async with running_fake() as fake:
        fake.enforce_limits()
        bot = create_bot(TelegramSettings(token=Secret(TOKEN), api_base=fake.url))
        limiter = SendLimiter()
        queue: asyncio.Queue[tuple[int, str, bool]] = asyncio.Queue()  # chat, text, holds its chat's slot
        for chat, text in messages:
            queue.put_nowait((chat, text, False))
        left = len(messages)
        loop = asyncio.get_running_loop()

        async def worker() -> None:
            nonlocal left
            while left:
                try:
                    chat, text, held = queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.05)
                    continue
                wait = limiter.take_chat_slot(chat, held=held)
                if wait > MAX_CHAT_WAIT:
                    loop.call_later(wait, queue.put_nowait, (chat, text, True))
                    continue
                await limiter.wait_turn(chat, chat_slot_held=True)
                try:
                    await bot.send_message(chat, text)
                    left -= 1
                except TelegramRetryAfter as error:
                    limiter.pause(error.retry_after)
                    limiter.not_delivered(chat)
                    loop.call_later(error.retry_after, queue.put_nowait, (chat, text, False))

        try:
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(workers)))
            return send_figures(fake, 0, started)
        finally:
            await bot.session.close()


async def sender_at_limit(pool: asyncpg.Pool, tenant: TenantRef, linked: list[Linked], sizes: Sizes) -> None:
    chats = linked[: sizes.chats]
    expected = len(chats) * sizes.per_chat
    print(
        f"\n(3) The sender against Telegram's flood limits: {expected} notices to {len(chats)} chats"
        f" ({sizes.per_chat} each), {sizes.send_workers} loops; goal {SEND_RATE_GOAL:.0f} msg/s, 0 refusals;"
        f" at 30/s they take {(expected - 1) / SEND_RATE_GOAL:.1f} s; load {load()}"
    )
    grouped = await notices_for(tenant, [who.user_id for who in chats], sizes.per_chat)
    shuffled = random.Random(5).sample(grouped, len(grouped))
    reminders = sum(1 for _, notice in grouped if notice.kind == "task_reminder")
    print(f"    {reminders} task reminders (client, phones, buttons), {expected - reminders} plain notices")
    accounts = {who.user_id: who.account for who in chats}
    for order, deliveries in (("shuffled", shuffled), ("each chat's in a row", grouped)):
        print(f"  queued {order}:")
        messages = [(accounts[user.id], f"🔔 {notice.title}\n{notice.body}") for user, notice in deliveries]
        product, queued, again = await product_sender(pool, tenant, deliveries, sizes.send_workers)
        print_send("product: telegram.send timers, run_due", product, expected)
        print(
            f"      notify_many queued the {expected} timers in {queued:.2f} s (not counted above);"
            f" timers queued again (busy chat or 429): {again}; load {load()}"
        )
        bare = await bare_sender(messages, sizes.send_workers)
        print_send("baseline: bare loops, SendLimiter + Bot", bare, expected)
        print(f"      load {load()}")
        for label, figures in (("product", product), ("baseline", bare)):
            uneven = {chat: count for chat, count in figures.per_chat.items() if count != sizes.per_chat}
            if uneven or len(figures.per_chat) != len(chats):
                print(f"    {label}: chats with other than {sizes.per_chat} messages: {uneven}")
        ceiling = BOT_RATE / (1 + MARGIN)
        print(
            f"    product / baseline rate: {product.rate / bare.rate:.2f}x; product / {SEND_RATE_GOAL:.0f} msg/s:"
            f" {product.rate / SEND_RATE_GOAL:.2f}x (the limiter aims at {ceiling:.1f}/s, 30/s less its margin);"
            f" 429s: {product.refused} -> {'met' if product.refused == 0 else 'MISSED'} (0 refusals)"
        )


# --- the run ----------------------------------------------------------------------------------

SECTIONS = ("latency", "updates", "sender")


def sections_of(text: str) -> tuple[str, ...]:
    """``--sections latency,sender`` as a tuple in run order; unknown names are an error."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    if not wanted or wanted - set(SECTIONS):
        raise argparse.ArgumentTypeError(f"sections are a comma-separated subset of {', '.join(SECTIONS)}")
    return tuple(section for section in SECTIONS if section in wanted)


async def run(sizes: Sizes, sections: tuple[str, ...] = SECTIONS) -> None:
    rng = random.Random(2026)
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=10)
        configure_logging("WARNING")
        try:
            pool = services.db.pool
            print(f"PostgreSQL {await server_version(pool)}; {os.cpu_count()} CPUs; load average {load()}")
            print("World:")
            world = await build_world(services, sizes.world)
            await measure(services, database, world, sizes, rng, sections)
            print(f"\nLoad average at the end: {load()}")
        finally:
            await services.db.close()


async def measure(
    services: Services,
    database: BenchDatabase,
    world: World,
    sizes: Sizes,
    rng: random.Random,
    sections: tuple[str, ...] = SECTIONS,
) -> None:
    pool = services.db.pool
    tenant = world.big.tenant
    async with running_fake() as fake:
        bot = create_bot(bot_settings(database, fake).telegram)
        try:
            probe = BotProbe(fake, bot, create_dispatcher(services))
            staff = [world.big.admin.user_id] + [person.user_id for person in world.big.staff]
            # The manager of crm_core's measurements comes second, so both measured users are linked.
            staff.remove(world.manager.user_id)
            staff.insert(1, world.manager.user_id)
            wanted = max(sizes.chats, sizes.senders)
            users = staff[:wanted] + await add_users(tenant, wanted - len(staff))
            started = time.perf_counter()
            linked = await link_accounts(pool, fake, bot, probe.dispatcher, tenant, users)
            took = time.perf_counter() - started
            print(f"\nLinked {len(linked)} Telegram accounts through /start <code> in {took:.1f} s")
            readable = {
                "admin": await readable_clients(pool, tenant.schema, None),
                "manager": await readable_clients(pool, tenant.schema, [world.manager.user_id]),
            }
            if "latency" in sections:
                measured = {"admin": linked[0], "manager": linked[1]}
                await find_card_latency(probe, pool, tenant, measured, readable, sizes, rng)
                await where_bot_time_goes(probe, pool, tenant, linked[0], readable["admin"], sizes)
            if "updates" in sections:
                texts = [text for _, text in await search_queries(rng, pool, tenant.schema, readable["admin"], 200)]
                senders = linked[: sizes.senders]
                cards = await cards_for(tenant, senders, texts[:40], readable["admin"])
                await updates_per_second(services, database, fake, probe, senders, cards, texts, sizes)
        finally:
            await bot.session.close()
    if "sender" in sections:
        await sender_at_limit(pool, tenant, linked, sizes)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bot", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small world and few updates, to smoke-test")
    parser.add_argument(
        "--sections", type=sections_of, default=SECTIONS, help=f"a subset of {','.join(SECTIONS)} (default all)"
    )
    parser.add_argument("--chats", type=int, default=None, help="(3): chats written to")
    parser.add_argument("--per-chat", type=int, default=None, help="(3): messages to each chat")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    sizes = replace(sizes, chats=args.chats or sizes.chats, per_chat=args.per_chat or sizes.per_chat)
    asyncio.run(run(sizes, args.sections))


if __name__ == "__main__":
    main()
