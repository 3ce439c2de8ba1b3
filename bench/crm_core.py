"""The CRM core on a 200,000-client company: client card, search and planner latency, and card throughput
against a bare handler running the same SQL, all in-process through ASGI.

    .venv/bin/python -m bench.crm_core [--quick] [--requests N] [--seconds S] [--rounds N]
                                       [--sections card,search,planner,throughput]

The world is ``bench/crm_data.py``'s: 3 small companies and one with 60 users, 200,000
clients, 2,000,000 activities and 500,000 tasks. The app is ``create_app(settings,
services=services)`` sharing the benchmark's one Piccolo engine and pool (10 connections),
its lifespan entered with Litestar's ``app.lifespan()`` (so the timer runner runs as in
production), and requests go through ``httpx.ASGITransport``: no sockets, no network.
Tokens come from ``POST /api/v1/auth/token`` (argon2 and all). Each principal gets several
tokens, used in turn, because every token has its own rate limit (1,200 requests a minute
in the enterprise edition).

Principals: the admin (scope ``all``); the head of the "Продажи Москва" line
(``head_of_sales``: ``department`` over 9 people); one of its managers (``own``); and for
the planner the sales director (``department`` over the 27 people of "Продажи").

(1) Card ``GET /api/v1/clients/{id}/card``: N clients per principal drawn from what the
    principal may read, 20% from its 1% with the most activities and 80% at random; the
    principals and a bare handler (below, the admin's statements) interleaved request by
    request, order rotating. Then the same requests once more with every asyncpg call timed
    (where the time goes), and EXPLAIN ANALYZE of the card's statements for the heaviest
    client.
(2) Search ``GET /api/v1/search?q=``: realistic queries in ten kinds (surname fragments in
    Cyrillic, Latin and Cyrillic company names, full person names, phones as E.164, as
    ``8 (9xx) xxx-xx-xx`` and as their last digits, e-mails, tax ids, misspellings) built
    from the data each principal may read; interleaved over the principals; p50/p95 per
    kind; EXPLAIN ANALYZE of the statements of the slowest query of the slowest kind.
(3) Planner ``GET /api/v1/tasks/planner?weeks=3``: the manager's own three weeks
    (``assignee_id`` = self), the admin looking at one employee (cycling over the sales
    staff), the line head's department (9) and the director's (27); interleaved.
(4) Throughput: 8 and 32 requests in flight for S seconds against (a) the app's card as
    the admin, (b) a bare ASGI callable (no framework) running the card's statements (the
    very same SQL text, compiled from the product's templates and Piccolo queries) with
    asyncpg on the same pool in one transaction with the tenant's search_path, returning
    JSON encoded with msgspec, and (c) the bare handler plus the statements of the app's
    authentication (tenant row, token look-up transaction, rate-limit hit), and (d) a what-if
    that is NOT the product: the app while the pool releases connections without asyncpg's
    reset query and ``platform.rate_limits`` is UNLOGGED. Rounds rotate the order; medians
    of the rounds. Goal: (a) >= 0.5x (b).

"Where the time goes" repeats requests with every asyncpg call timed (count and time per
statement, the rest being Python), and the card's are also run under cProfile (own time by
package). The pool's cached statements are listed with their generic / custom plan counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import re
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
from litestar import Litestar

import crm.tenants.card.services as card_services
from bench.common import BENCH_PASSWORD, bench_database, ms, open_bench_services, percentile, server_version
from bench.crm_data import FULL as FULL_WORLD
from bench.crm_data import QUICK as QUICK_WORLD
from bench.crm_data import Person, World, build_world
from bench.crm_data import Sizes as WorldSizes
from crm.platform.app import create_app
from crm.platform.auth import _AUTHENTICATE, Principal
from crm.platform.services import Services
from crm.platform.sql import compile_sql
from crm.platform.tenancy import TenantRef

CARD_P95_GOAL = 0.025
SEARCH_P95_GOAL = 0.050
PLANNER_P95_GOAL = 0.050
THROUGHPUT_GOAL = 0.5
TOKENS_PER_PRINCIPAL = 8
THROUGHPUT_TOKENS = 64  # 64 x 1,200 a minute: far above what two cores serve
HEAVY_SHARE = 0.2
SENTINEL = 2_000_000_001  # a client id no query sees; replaced by the real one


@dataclass(frozen=True)
class Sizes:
    world: WorldSizes
    requests: int  # per principal and endpoint
    warmup: int
    seconds: float  # per throughput run
    rounds: int
    in_flight: tuple[int, ...]


FULL = Sizes(FULL_WORLD, requests=300, warmup=20, seconds=10.0, rounds=3, in_flight=(8, 32))
QUICK = Sizes(QUICK_WORLD, requests=30, warmup=5, seconds=2.0, rounds=1, in_flight=(8, 32))


# --- tracing every asyncpg call -----------------------------------------------------------------


@dataclass
class Trace:
    calls: list[tuple[str, float]]


_trace: Trace | None = None
_TRACED = ("fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table")


def _label(sql: str) -> str:
    text = " ".join(sql.split())
    for pattern, name in (
        (r"^WITH tenant AS \( SELECT id, slug", "authentication (one statement)"),
        (r"^SELECT set_config\('search_path'", "set search_path"),
        (r"^SELECT set_config\('pg_trgm", "set trgm threshold, bitmap scans only"),
        (r"^SELECT set_config\(name, reset_val", "reset scans on offer"),
        (r"^WITH holding AS MATERIALIZED \( SELECT id, name", "search: clients by name"),
        (r"^WITH holding AS MATERIALIZED \( SELECT id, title AS label FROM deals", "search: deals"),
        (r"^WITH holding AS MATERIALIZED \( SELECT id, title AS label FROM tasks", "search: tasks"),
        (r"^WITH card AS \(", "card (one statement)"),
        (
            r"^SELECT clients\.id, clients\.kind, clients\.name, clients\.phones.*search_phones\(phones\) LIKE",
            "search: phone suffix",
        ),
        (r"^SELECT clients\.id, clients\.kind, clients\.name, clients\.phones", "search: exact contacts"),
        (r"^SELECT DISTINCT typed\.word", "search: spellings like the words"),
        (r"^SELECT (ALL )?\"users\"\.\"id\"( AS \"id\")?, \"users\"\.\"name\"", "planner: employees"),
        (r"^SELECT (ALL )?\"tenant_settings\"", "tenant setting (phone region)"),
        (r"^SELECT pg_advisory_unlock_all", "pool: reset on release"),
        (r"^UPDATE platform\.timers", "timer runner"),
        (r"^WITH RECURSIVE subtree AS", "department subtree"),
        (r"^SELECT d\.assignee_id, d\.day", "planner: tasks"),
        (r"^BEGIN", "BEGIN"),
        (r"^COMMIT", "COMMIT"),
    ):
        if re.search(pattern, text):
            return name
    return text[:60]


@contextlib.contextmanager
def tracing() -> Iterator[Trace]:
    """Time every fetch/fetchrow/fetchval/execute/executemany/copy_records_to_table of every
    asyncpg connection while inside; ``calls`` holds (SQL text or COPY's table name, seconds)."""
    global _trace
    originals = {name: getattr(asyncpg.connection.Connection, name) for name in _TRACED}

    def wrap(name: str) -> Callable[..., Awaitable[Any]]:
        original = originals[name]

        async def traced(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, query, *args, **kwargs)
            finally:
                if _trace is not None:
                    _trace.calls.append((query, time.perf_counter() - started))

        return traced

    trace = Trace([])
    for name in _TRACED:
        setattr(asyncpg.connection.Connection, name, wrap(name))
    _trace = trace
    try:
        yield trace
    finally:
        _trace = None
        for name, original in originals.items():
            setattr(asyncpg.connection.Connection, name, original)


# --- the bare handler --------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    args: list[Any]

    def bind(self, client_id: int) -> list[Any]:
        return [client_id if arg == SENTINEL else arg for arg in self.args]


async def card_statement(principal: Principal) -> Statement:
    """The product's own card statement for ``principal`` (``crm/tenants/card/services.py``)."""
    return Statement(*await card_services.card_statement(principal, SENTINEL))


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
_CARD_PARTS = ("client", "companies", "people", "contacts", "deals", "figures", "timeline", "tasks", "responsible")


class BareCard:
    """A plain ASGI callable: ``GET …/clients/{id}/card`` → the card's statements → JSON."""

    def __init__(self, pool: asyncpg.Pool, tenant: TenantRef, statement: Statement, *, auth: bool = False) -> None:
        self.pool = pool
        self.tenant = tenant
        self.statement = statement
        self.auth = auth
        self.auth_sql = _AUTHENTICATE.format(schema=f'"{tenant.schema}"')

    async def authenticate(self, header: bytes) -> bool:
        """The product's authentication statement, as it is sent (tenant, token, rights, stamp, hit)."""
        token = header.decode().partition(" ")[2]
        secret = token.split("_", 2)[2]
        digest = hashlib.sha256(secret.encode()).hexdigest()
        row = await self.pool.fetchrow(self.auth_sql, self.tenant.id, self.tenant.schema, digest)
        return row is not None and row["user_id"] is not None

    async def card(self, client_id: int) -> dict[str, Any] | None:
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT set_config('search_path', $1, true)", f'"{self.tenant.schema}", public')
            row = await connection.fetchrow(self.statement.sql, *self.statement.bind(client_id))
        if row is None:
            return None
        part = {key: _decode(row[key] or "null") for key in _CARD_PARTS}
        client = part["client"]
        client["companies"], client["people"] = part["companies"], part["people"]
        counts = {"open": 0, "won": 0, "lost": 0}
        for figure in part["figures"]:
            counts[figure["status"]] += figure["deals"]
        now = datetime.now(UTC)
        last = client["last_contact_at"]
        return {
            "client": client,
            "responsible": part["responsible"],
            "contacts": part["contacts"],
            "deals": part["deals"],
            "timeline": part["timeline"],
            "tasks": part["tasks"],
            "figures": {
                "revenue_won": [
                    {"currency": f["currency"], "amount": f["amount"]} for f in part["figures"] if f["status"] == "won"
                ],
                "deals_open": counts["open"],
                "deals_won": counts["won"],
                "deals_lost": counts["lost"],
                "first_contact_at": client["first_contact_at"],
                "last_contact_at": last,
                "days_since_last_contact": None if last is None else (now - datetime.fromisoformat(last)).days,
            },
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        status, body = 200, b""
        if self.auth:
            header = dict(scope["headers"]).get(b"authorization", b"")
            if not await self.authenticate(header):
                status, body = 401, b'{"title":"Unauthorized"}'
        if status == 200:
            card = await self.card(int(scope["path"].rstrip("/").split("/")[-2]))
            status, body = (200, _encode(card)) if card is not None else (404, b'{"title":"Not found"}')
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


# --- principals and samples ----------------------------------------------------------------------


@dataclass
class Caller:
    key: str
    label: str
    person: Person
    tokens: list[str]
    principal: Principal | None = None
    _turn: int = 0

    def headers(self) -> dict[str, str]:
        self._turn += 1
        return {"Authorization": f"Bearer {self.tokens[self._turn % len(self.tokens)]}"}


async def login(http: httpx.AsyncClient, tenant: TenantRef, person: Person) -> str:
    response = await http.post(
        "/api/v1/auth/token", json={"tenant": tenant.slug, "email": person.email, "password": BENCH_PASSWORD}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def principal_of(services: Services, token: str) -> Principal:
    from crm.platform.auth import authenticate

    return (await authenticate(services.db, token)).principal


async def subtree_users(pool: asyncpg.Pool, schema: str, department_id: int) -> list[int]:
    rows = await pool.fetch(
        f"""
        WITH RECURSIVE subtree AS (
            SELECT id FROM "{schema}".departments WHERE id = $1
            UNION ALL SELECT d.id FROM "{schema}".departments d JOIN subtree s ON d.parent_id = s.id)
        SELECT u.id FROM "{schema}".users u JOIN subtree s ON u.department_id = s.id
        """,
        department_id,
    )
    return [int(row["id"]) for row in rows]


async def readable_clients(pool: asyncpg.Pool, schema: str, owners: list[int] | None) -> list[int]:
    """Client ids the scope reads: ``owners`` None for everyone, else responsible or author among them."""
    if owners is None:
        rows = await pool.fetch(f'SELECT id FROM "{schema}".clients')
    else:
        rows = await pool.fetch(
            f'SELECT id FROM "{schema}".clients WHERE responsible_id = ANY($1::int[]) OR author_id = ANY($1::int[])',
            owners,
        )
    return [int(row["id"]) for row in rows]


def card_sample(rng: random.Random, ids: list[int], counts: dict[int, int], n: int) -> list[int]:
    """20% from the 1% of ``ids`` with the most activities, the rest at random."""
    heavy = sorted(ids, key=lambda client: -counts[client])[: max(5, len(ids) // 100)]
    return [rng.choice(heavy) if rng.random() < HEAVY_SHARE else rng.choice(ids) for _ in range(n)]


# --- latency --------------------------------------------------------------------------------------

Request = Callable[[int], Awaitable[httpx.Response]]


async def interleaved(kinds: dict[str, Request], n: int, warmup: int) -> dict[str, list[float]]:
    """``n`` requests of each kind, one at a time, kinds interleaved, order rotating; request
    ``warmup + i`` is the i-th measured one (0 … warmup - 1 warm up)."""
    keys = list(kinds)
    for index in range(warmup):
        for key in keys:
            response = await kinds[key](index)
            assert response.status_code == 200, (key, response.status_code, response.text[:300])
    times: dict[str, list[float]] = {key: [] for key in keys}
    for index in range(n):
        shift = index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            started = time.perf_counter()
            response = await kinds[key](warmup + index)
            times[key].append(time.perf_counter() - started)
            assert response.status_code == 200, (key, response.status_code, response.text[:300])
    return times


def line(label: str, values: Sequence[float], goal: float | None = None) -> str:
    text = f"  {label:44} p50 {ms(percentile(values, 50))}  p95 {ms(percentile(values, 95))}"
    text += f"  max {ms(max(values))}  (n={len(values)})"
    if goal is not None:
        text += f"   p95 goal < {goal * 1000:.0f} ms: {'met' if percentile(values, 95) < goal else 'MISSED'}"
    return text


def where_time_goes(trace: Trace, requests: int, total: float) -> None:
    """Per request: each statement kind's count and time, and what is left for Python."""
    by: dict[str, list[float]] = defaultdict(list)
    for sql, seconds in trace.calls:
        by[_label(sql)].append(seconds)
    database = sum(seconds for _, seconds in trace.calls)
    print(
        f"    {requests} requests traced: {len(trace.calls) / requests:.1f} asyncpg calls per request;"
        f" per request {ms(total / requests)} in all, {ms(database / requests)} awaiting the database,"
        f" {ms((total - database) / requests)} in Python (framework, ORM, encoding, client)"
    )
    for label, values in sorted(by.items(), key=lambda item: -sum(item[1])):
        print(
            f"      {label:42} {len(values) / requests:5.2f} per request, mean {ms(statistics.mean(values))},"
            f" p95 {ms(percentile(values, 95))}, share of request time {sum(values) / total:6.1%}"
        )


async def traced_requests(kinds: dict[str, Request], keys: Sequence[str], n: int) -> None:
    for key in keys:
        with tracing() as trace:
            started = time.perf_counter()
            for index in range(n):
                response = await kinds[key](index)
                assert response.status_code == 200
            total = time.perf_counter() - started
        print(f"    -- {key}")
        where_time_goes(trace, n, total)


def _package(filename: str, function: str) -> str:
    """What a profiled function belongs to: a third-party package, a part of crm, the standard library."""
    if filename == "~":
        return "waiting for I/O (epoll)" if "poll" in function else "built-ins (C)"
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/crm/" in filename:
        parts = filename.split("/crm/")[1].split("/")
        return "crm/" + "/".join(parts[:2]).removesuffix(".py")
    if "/bench/" in filename:
        return "bench (client side)"
    return "stdlib " + filename.rsplit("/", 1)[-1].removesuffix(".py")


async def python_profile(request: Request, n: int, *, top: int = 12) -> None:
    """cProfile ``n`` sequential requests; own time by package and the top functions."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for index in range(n):
        await request(index)
    profiler.disable()
    wall = time.perf_counter() - started
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    functions: list[tuple[float, str]] = []
    for (filename, number, function), (_, _, own, _, _) in stats.items():
        by_package[_package(filename, function)] += own
        where = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        functions.append((own, f"{where}:{number} {function}"))
    print(f"    cProfile of {n} requests ({ms(wall / n).strip()} each under the profiler), own time per request:")
    for package, own in sorted(by_package.items(), key=lambda item: -item[1])[:top]:
        print(f"      {package:36} {ms(own / n)}  {own / wall:6.1%}")
    print("    top functions by own time:")
    for own, name in sorted(functions, reverse=True)[:top]:
        print(f"      {ms(own / n)}  {name[:110]}")


async def explain(pool: asyncpg.Pool, schema: str, sql: str, args: Sequence[Any], *, trgm: bool = False) -> list[str]:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT set_config('search_path', $1, true)", f'"{schema}", public')
        if trgm:
            await connection.execute("SELECT set_config('pg_trgm.word_similarity_threshold', '0.5', true)")
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    return [str(row[0]) for row in rows]


def print_plan(title: str, plan: list[str], *, limit: int = 40) -> None:
    print(f"    {title}")
    for text in plan[:limit]:
        print(f"      {text}")
    if len(plan) > limit:
        print(f"      … {len(plan) - limit} more lines")


# --- search queries -------------------------------------------------------------------------------

SEARCH_KINDS = (
    "surname fragment, Cyrillic",
    "company name, Latin",
    "company name, Cyrillic",
    "person, full name",
    "phone, E.164",
    "phone, 8 (9xx) xxx-xx-xx",
    "phone, last digits",
    "e-mail",
    "tax id",
    "misspelt name",
)


def misspell(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word + word[-1]
    position = rng.randrange(1, len(word) - 1)
    roll = rng.random()
    if roll < 0.4:  # swap two letters
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    if roll < 0.7:  # a letter replaced by a neighbour-ish one
        swaps = {"о": "а", "а": "о", "е": "и", "и": "е", "ф": "в", "в": "ф", "o": "a", "a": "e", "e": "i", "i": "y"}
        return word[:position] + swaps.get(word[position], "к") + word[position + 1 :]
    return word[:position] + word[position + 1 :]  # a letter dropped


def local_phone(phone: str) -> str:
    digits = phone.removeprefix("+7")
    return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"


async def search_queries(
    rng: random.Random, pool: asyncpg.Pool, schema: str, ids: list[int], n: int
) -> list[tuple[str, str]]:
    """``n`` (kind, query) pairs, the kinds in turn, built from clients among ``ids``."""
    from bench.crm_data import EN_ADJECTIVES, EN_NOUNS, RU_ADJECTIVES, RU_NOUNS, RU_ROOTS, RU_SUFFIXES, RU_SURNAMES

    picked = rng.sample(ids, min(len(ids), 4 * n))
    rows = await pool.fetch(
        f'SELECT id, kind, name, phones, emails, tax_id FROM "{schema}".clients WHERE id = ANY($1::int[])', picked
    )
    with_phone = [row for row in rows if row["phones"]]
    with_email = [row for row in rows if row["emails"]]
    with_tax = [row for row in rows if row["tax_id"]]
    people = [row for row in rows if row["kind"] == "person" and not row["name"].startswith("ИП")]
    queries: list[tuple[str, str]] = []
    for index in range(n):
        kind = SEARCH_KINDS[index % len(SEARCH_KINDS)]
        if kind == "surname fragment, Cyrillic":
            surname = rng.choice(RU_SURNAMES)
            roll = rng.random()
            q = surname if roll < 0.4 else surname[: max(4, len(surname) - 2)] if roll < 0.7 else surname.lower()
            q = q.replace("ё", "е") if rng.random() < 0.5 else q
        elif kind == "company name, Latin":
            roll = rng.random()
            q = (
                f"{rng.choice(EN_ADJECTIVES)} {rng.choice(EN_NOUNS)}"
                if roll < 0.5
                else rng.choice(EN_NOUNS).lower()
                if roll < 0.75
                else rng.choice(EN_ADJECTIVES)
            )
        elif kind == "company name, Cyrillic":
            roll = rng.random()
            q = (
                rng.choice(RU_ROOTS) + rng.choice(RU_SUFFIXES)
                if roll < 0.5
                else f"{rng.choice(RU_ADJECTIVES)} {rng.choice(RU_NOUNS)}"
                if roll < 0.8
                else rng.choice(RU_ROOTS)
            )
        elif kind == "person, full name":
            row = rng.choice(people)
            q = " ".join(row["name"].split()[:2])
        elif kind == "phone, E.164":
            q = rng.choice(rng.choice(with_phone)["phones"])
        elif kind == "phone, 8 (9xx) xxx-xx-xx":
            q = local_phone(rng.choice(with_phone)["phones"][0])
        elif kind == "phone, last digits":
            digits = rng.choice(with_phone)["phones"][0][-7:]
            q = f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if rng.random() < 0.5 else digits[-6:]
        elif kind == "e-mail":
            q = rng.choice(with_email)["emails"][0]
        elif kind == "tax id":
            q = str(rng.choice(with_tax)["tax_id"])
        else:
            words = rng.choice(rows)["name"].replace("«", " ").replace("»", " ").replace('"', " ").split()
            word = max(words, key=len)
            q = misspell(rng, word)
        queries.append((kind, q))
    return queries


# --- throughput -----------------------------------------------------------------------------------


async def hammer(request: Request, in_flight: int, seconds: float) -> tuple[float, int, int]:
    """(requests/s, completed, failed) with ``in_flight`` loops for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = failed = 0
    statuses: dict[int, int] = defaultdict(int)

    async def loop(start: int) -> None:
        nonlocal done, failed
        index = start
        while time.perf_counter() < deadline:
            response = await request(index)
            index += in_flight
            if response.status_code == 200:
                done += 1
            else:
                failed += 1
                statuses[response.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(worker) for worker in range(in_flight)))
    elapsed = time.perf_counter() - started
    if statuses:
        print(f"      failures by status: {dict(statuses)}")
    return done / elapsed, done, failed


# --- the run --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served(app: Litestar | BareCard) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.bench", timeout=120) as http:
        yield http


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


SECTIONS = ("card", "search", "planner", "throughput")


def sections_of(text: str) -> tuple[str, ...]:
    """``--sections card,search`` as a tuple in run order; unknown names are an error."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = wanted - set(SECTIONS)
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(f"sections are a comma-separated subset of {', '.join(SECTIONS)}")
    return tuple(section for section in SECTIONS if section in wanted)


async def run(sizes: Sizes, sections: tuple[str, ...] = SECTIONS) -> None:
    rng = random.Random(4242)
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=10)
        try:
            pool = services.db.pool
            print(f"PostgreSQL {await server_version(pool)}; {os.cpu_count()} CPUs; load average {load()}")
            print("World:")
            world = await build_world(services, sizes.world)
            app = create_app(database.settings(), services=services)
            async with app.lifespan(), served(app) as http:
                await measure(services, world, http, sizes, rng, sections)
            print(f"\nLoad average at the end: {load()}")
        finally:
            await services.db.close()


async def measure(
    services: Services,
    world: World,
    http: httpx.AsyncClient,
    sizes: Sizes,
    rng: random.Random,
    sections: tuple[str, ...] = SECTIONS,
) -> None:
    pool = services.db.pool
    tenant = world.big.tenant
    schema = tenant.schema
    started = time.perf_counter()
    callers = {
        "admin": Caller("admin", "admin (all)", world.big.admin, []),
        "line_head": Caller("line_head", "line head (department, 9)", world.line_head, []),
        "manager": Caller("manager", "manager (own)", world.manager, []),
        "director": Caller("director", "sales director (department, 27)", world.director, []),
    }
    for caller in callers.values():
        caller.tokens = [await login(http, tenant, caller.person) for _ in range(TOKENS_PER_PRINCIPAL)]
        caller.principal = await principal_of(services, caller.tokens[0])
    # The throughput runs' tokens cost an argon2 login each: only when that section runs.
    bulk = (
        [await login(http, tenant, world.big.admin) for _ in range(THROUGHPUT_TOKENS)]
        if "throughput" in sections
        else []
    )
    print(f"\nLogged in {4 * TOKENS_PER_PRINCIPAL + len(bulk)} times in {time.perf_counter() - started:.1f} s")
    line_users = await subtree_users(pool, schema, world.line_head.department_id or 0)
    readable = {
        "admin": await readable_clients(pool, schema, None),
        "line_head": await readable_clients(pool, schema, line_users),
        "manager": await readable_clients(pool, schema, [world.manager.user_id]),
    }
    total = len(readable["admin"])
    print(
        "Clients readable: "
        + ", ".join(f"{callers[key].label} {len(ids):,} ({len(ids) / total:.1%})" for key, ids in readable.items())
    )
    async with contextlib.AsyncExitStack() as stack:
        # The bare handler runs the card's own statements: only the card and throughput use it.
        if "card" in sections or "throughput" in sections:
            admin_statement = await statement_for(callers["admin"])
            bare_http = await stack.enter_async_context(served(BareCard(pool, tenant, admin_statement)))
            bare_auth_http = await stack.enter_async_context(served(BareCard(pool, tenant, admin_statement, auth=True)))
        if "card" in sections:
            await card_latency(world, http, bare_http, callers, readable, sizes, rng)
            await cached_plans(pool, ("card", "authentication"))
            await card_plans(pool, schema, world, callers, admin_statement)
        if "search" in sections:
            await search_latency(pool, schema, http, callers, readable, sizes, rng)
        if "planner" in sections:
            await planner_latency(pool, schema, world, http, callers, sizes)
        if "throughput" in sections:
            await throughput(pool, world, http, bare_http, bare_auth_http, bulk, readable["admin"], sizes, rng)


async def statement_for(caller: Caller) -> Statement:
    assert caller.principal is not None
    return await card_statement(caller.principal)


async def card_latency(
    world: World,
    http: httpx.AsyncClient,
    bare_http: httpx.AsyncClient,
    callers: dict[str, Caller],
    readable: dict[str, list[int]],
    sizes: Sizes,
    rng: random.Random,
) -> None:
    n = sizes.requests
    samples = {key: card_sample(rng, ids, world.activity_counts, n + sizes.warmup) for key, ids in readable.items()}

    def card(key: str) -> Request:
        caller = callers[key]

        async def send(index: int) -> httpx.Response:
            return await http.get(f"/api/v1/clients/{samples[key][index]}/card", headers=caller.headers())

        return send

    async def bare_card(index: int) -> httpx.Response:
        return await bare_http.get(f"/api/v1/clients/{samples['admin'][index]}/card")

    kinds: dict[str, Request] = {key: card(key) for key in readable}
    kinds["bare"] = bare_card
    labels = {**{key: callers[key].label for key in readable}, "bare": "bare handler, admin's statement"}
    print(
        f"\n(1) Client card GET /api/v1/clients/{{id}}/card: {n} requests per kind ({HEAVY_SHARE:.0%} heavy clients),"
        f" interleaved, one in flight; load {load()}"
    )
    times = await interleaved(kinds, n, sizes.warmup)
    for key, values in times.items():
        print(line(labels[key], values, CARD_P95_GOAL if key != "bare" else None))
    for key in readable:
        heavy = set(
            sorted(readable[key], key=lambda client: -world.activity_counts[client])[
                : max(5, len(readable[key]) // 100)
            ]
        )
        mine = [t for t, client in zip(times[key], samples[key][sizes.warmup :], strict=False) if client in heavy]
        light = [t for t, client in zip(times[key], samples[key][sizes.warmup :], strict=False) if client not in heavy]
        if mine and light:
            print(
                f"    {labels[key]}: heavy clients p50 {ms(percentile(mine, 50))} p95 {ms(percentile(mine, 95))}"
                f" (n={len(mine)}); the others p50 {ms(percentile(light, 50))} p95 {ms(percentile(light, 95))}"
            )
    app_p50 = percentile(times["admin"], 50)
    bare_p50 = percentile(times["bare"], 50)
    print(f"  admin card / bare handler, p50: {app_p50 / bare_p50:.2f}x (+{ms(app_p50 - bare_p50).strip()})")
    sizes_seen = [
        len((await http.get(f"/api/v1/clients/{client}/card", headers=callers["admin"].headers())).content)
        for client in samples["admin"][:50]
    ]
    median, largest = statistics.median(sizes_seen) / 1024, max(sizes_seen) / 1024
    print(f"  response size (admin, 50 cards): median {median:.1f} KiB, max {largest:.1f} KiB")
    print("  where the time goes (same requests again, every asyncpg call timed):")
    await traced_requests(kinds, ["admin", "line_head", "bare"], min(n, 100))
    print("  where the Python time goes, admin card:")
    await python_profile(kinds["admin"], min(n, 200))
    print("  the same for the bare handler:")
    await python_profile(kinds["bare"], min(n, 200), top=6)


async def cached_plans(pool: asyncpg.Pool, prefixes: Sequence[str]) -> None:
    """How the pool's connections planned their cached statements (generic vs custom plans),
    summed over every connection, for the statements whose label starts with ``prefixes``."""
    size = pool.get_size()
    connections = [await pool.acquire() for _ in range(size)]
    try:
        rows = [
            row
            for connection in connections
            for row in await connection.fetch(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            )
        ]
    finally:
        for connection in connections:
            await pool.release(connection)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        label = _label(str(row["statement"]))
        if label.startswith(tuple(prefixes)):
            totals[label][0] += int(row["generic_plans"])
            totals[label][1] += int(row["custom_plans"])
    print(f"  cached statements on the pool's {size} connections, plans used (generic / custom):")
    for label, (generic, custom) in sorted(totals.items()):
        print(f"    {label:42} {generic:6} / {custom:<6}")


async def card_plans(
    pool: asyncpg.Pool, schema: str, world: World, callers: dict[str, Caller], admin: Statement
) -> None:
    heaviest = world.heavy_clients[0]
    print(
        f"\n  EXPLAIN ANALYZE of the card statement for the heaviest client ({heaviest},"
        f" {world.activity_counts[heaviest]} activities), admin and line head:"
    )
    line_head = await statement_for(callers["line_head"])
    for label, statement in (("admin", admin), ("line head", line_head)):
        plan = await explain(pool, schema, statement.sql, statement.bind(heaviest))
        planning = next((text for text in plan if text.startswith("Planning Time")), "")
        execution = next((text for text in plan if text.startswith("Execution Time")), "")
        print(f"    {label:9} {planning:24} {execution:26}")
    plan = await explain(pool, schema, line_head.sql, line_head.bind(heaviest))
    print_plan("line head's card, heaviest client:", plan, limit=60)


async def search_latency(
    pool: asyncpg.Pool,
    schema: str,
    http: httpx.AsyncClient,
    callers: dict[str, Caller],
    readable: dict[str, list[int]],
    sizes: Sizes,
    rng: random.Random,
) -> None:
    n = sizes.requests
    queries = {key: await search_queries(rng, pool, schema, ids, n + sizes.warmup) for key, ids in readable.items()}

    def search(key: str) -> Request:
        caller = callers[key]

        async def send(index: int) -> httpx.Response:
            return await http.get("/api/v1/search", params={"q": queries[key][index][1]}, headers=caller.headers())

        return send

    kinds = {key: search(key) for key in readable}
    print(
        f"\n(2) Search GET /api/v1/search?q=: {n} queries per principal in {len(SEARCH_KINDS)} kinds, interleaved;"
        f" load {load()}"
    )
    examples = ", ".join(repr(q) for _, q in queries["admin"][: len(SEARCH_KINDS)])
    print(f"  e.g. {examples}")
    times = await interleaved(kinds, n, sizes.warmup)
    for key, values in times.items():
        print(line(callers[key].label, values, SEARCH_P95_GOAL))
    print(f"  per kind, p50 / p95 in ms ({', '.join(callers[key].label for key in readable)}):")
    worst: tuple[float, str] = (0.0, "")
    for kind in SEARCH_KINDS:
        cells = []
        for key in readable:
            mine = [t for t, (k, _) in zip(times[key], queries[key][sizes.warmup :], strict=False) if k == kind]
            cells.append(f"{percentile(mine, 50) * 1000:6.1f} / {percentile(mine, 95) * 1000:6.1f}")
            worst = max(worst, (percentile(mine, 95), kind))
        print(f"    {kind:30} " + "   ".join(cells))
    print("  where the time goes (admin and manager, every asyncpg call timed):")
    await traced_requests(kinds, ["admin", "manager"], min(n, 100))
    # The statements of the slowest query of the slowest kind, as the app sent them, explained.
    kind = worst[1]
    for key in ("admin", "manager"):
        timed = [(t, q) for t, (k, q) in zip(times[key], queries[key][sizes.warmup :], strict=False) if k == kind]
        took, q = max(timed)
        recorded = await recorded_search(http, callers[key], q)
        print(
            f"\n  EXPLAIN ANALYZE of the statements of {callers[key].label}'s search {q!r}"
            f" ({kind}, the slowest of its kind: {took * 1000:.1f} ms):"
        )
        # Replayed in one transaction as the app sent them: its set_config calls (the trigram
        # threshold, the scans on offer) shape the plans of the statements after them.
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT set_config('search_path', $1, true)", f'"{schema}", public')
            for sql, args in recorded:
                if sql.startswith("SELECT set_config"):
                    await connection.fetch(sql, *args)
                    continue
                plan = [str(row[0]) for row in await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)]
                print_plan(_label(sql) + ":", plan, limit=30)


async def recorded_search(http: httpx.AsyncClient, caller: Caller, q: str) -> list[tuple[str, list[Any]]]:
    """The statements the search service sends for ``q``, recorded around ``fetch_sql``."""
    import crm.tenants.search.services as search_services

    recorded: list[tuple[str, list[Any]]] = []
    original = search_services.fetch_sql

    async def recording(template: str, *args: Any) -> list[asyncpg.Record]:
        recorded.append(compile_sql(template, *args))
        return await original(template, *args)

    search_services.fetch_sql = recording
    try:
        response = await http.get("/api/v1/search", params={"q": q}, headers=caller.headers())
        assert response.status_code == 200
    finally:
        search_services.fetch_sql = original
    return recorded


async def planner_latency(
    pool: asyncpg.Pool, schema: str, world: World, http: httpx.AsyncClient, callers: dict[str, Caller], sizes: Sizes
) -> None:
    n = sizes.requests
    sales = await subtree_users(pool, schema, world.director.department_id or 0)
    sales = [user for user in sales if user not in (world.director.user_id,)]

    def planner(key: str, assignee: Callable[[int], int | None]) -> Request:
        caller = callers[key]

        async def send(index: int) -> httpx.Response:
            params: dict[str, Any] = {"weeks": 3}
            chosen = assignee(index)
            if chosen is not None:
                params["assignee_id"] = chosen
            return await http.get("/api/v1/tasks/planner", params=params, headers=caller.headers())

        return send

    kinds: dict[str, Request] = {
        "manager, own 3 weeks": planner("manager", lambda _: world.manager.user_id),
        "admin, one employee (cycling)": planner("admin", lambda index: sales[index % len(sales)]),
        "line head, department (9)": planner("line_head", lambda _: None),
        "director, department (27)": planner("director", lambda _: None),
    }
    print(f"\n(3) Planner GET /api/v1/tasks/planner?weeks=3: {n} requests per kind, interleaved; load {load()}")
    times = await interleaved(kinds, n, sizes.warmup)
    for key, values in times.items():
        print(line(key, values, PLANNER_P95_GOAL if key.startswith(("manager", "admin")) else None))
    for key, request in kinds.items():
        body = (await request(0)).json()
        tasks = sum(employee["total"] for employee in body["employees"])
        print(
            f"    {key}: {len(body['employees'])} employees, {tasks} tasks in the window, {len(str(body)) // 1024} KiB"
        )
    print("  where the time goes:")
    await traced_requests(kinds, list(kinds), min(n, 60))


async def throughput(
    pool: asyncpg.Pool,
    world: World,
    http: httpx.AsyncClient,
    bare_http: httpx.AsyncClient,
    bare_auth_http: httpx.AsyncClient,
    tokens: list[str],
    ids: list[int],
    sizes: Sizes,
    rng: random.Random,
) -> None:
    clients = card_sample(rng, ids, world.activity_counts, 4000)
    turn = itertools.count()

    def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[next(turn) % len(tokens)]}"}

    async def app_card(index: int) -> httpx.Response:
        return await http.get(f"/api/v1/clients/{clients[index % len(clients)]}/card", headers=headers())

    async def bare_card(index: int) -> httpx.Response:
        return await bare_http.get(f"/api/v1/clients/{clients[index % len(clients)]}/card")

    async def bare_auth_card(index: int) -> httpx.Response:
        return await bare_auth_http.get(f"/api/v1/clients/{clients[index % len(clients)]}/card", headers=headers())

    kinds: dict[str, Request] = {
        "(a) app: card as admin": app_card,
        "(b) bare: the card's statement": bare_card,
        "(c) bare + the auth statement": bare_auth_card,
    }

    print(
        f"\n(4) Card throughput, admin, {sizes.seconds:.0f} s per run, {sizes.rounds} rounds, order rotating;"
        f" pool of 10 connections; load {load()}"
    )
    keys = list(kinds)
    results: dict[tuple[str, int], list[float]] = defaultdict(list)
    for in_flight in sizes.in_flight:
        for key in keys:  # warm-up: every connection prepares its statements
            await hammer(kinds[key], in_flight, min(1.0, sizes.seconds / 2))
        for round_ in range(sizes.rounds):
            shift = round_ % len(keys)
            for key in keys[shift:] + keys[:shift]:
                rate, done, failed = await hammer(kinds[key], in_flight, sizes.seconds)
                results[(key, in_flight)].append(rate)
                print(f"    {in_flight:3} in flight, round {round_ + 1}: {key:34} {rate:7.0f} req/s", end="")
                print(f" ({done} ok, {failed} failed)")
    print(f"  requests/s, median of {sizes.rounds} rounds (load {load()}):")
    print(f"    {'':34} " + "".join(f"{f'{n} in flight':>14}" for n in sizes.in_flight))
    for key in keys:
        print(f"    {key:34} " + "".join(f"{statistics.median(results[(key, n)]):14.0f}" for n in sizes.in_flight))
    for n in sizes.in_flight:
        a = statistics.median(results[(keys[0], n)])
        b = statistics.median(results[(keys[1], n)])
        c = statistics.median(results[(keys[2], n)])
        verdict = "met" if a / b >= THROUGHPUT_GOAL else "MISSED"
        print(f"    {n} in flight: (a)/(b) {a / b:.2f}x  -> {verdict} (>= {THROUGHPUT_GOAL}x);  (a)/(c) {a / c:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crm_core", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small world and few requests, to smoke-test")
    parser.add_argument("--requests", type=int, default=None, help="requests per principal and endpoint")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=None, help="throughput rounds")
    parser.add_argument(
        "--sections",
        type=sections_of,
        default=SECTIONS,
        help=f"comma-separated sections to run, in this order whatever is given: {','.join(SECTIONS)} (default all)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    sizes = replace(
        sizes,
        requests=args.requests or sizes.requests,
        seconds=args.seconds or sizes.seconds,
        rounds=args.rounds or sizes.rounds,
    )
    asyncio.run(run(sizes, args.sections))


if __name__ == "__main__":
    main()
