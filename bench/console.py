"""The web console on a 200,000-client company: server render time of the client card page
and of the deals kanban, and the bytes a first page load transfers.

    .venv/bin/python -m bench.console [--quick] [--requests N]

The world is ``bench/crm_data.py``'s (the same one ``bench.crm_core`` measures the API on).
The app runs in-process behind ``httpx.ASGITransport`` (no sockets), its lifespan entered as
in production. Sessions come from the console's own sign-in form (CSRF token, argon2 and
all): the admin (scope ``all``) and a manager (``own``).

(1) Card page ``GET /{company}/clients/{id}`` for N clients per principal (20% from the 1%
    with the most activities), interleaved request by request with the API's JSON card
    ``GET /api/v1/clients/{id}/card`` for the same client and principal — the baseline: the
    same data without the page around it. Goal: p95 < 50 ms.
(2) Kanban ``GET /{company}/deals`` (the default pipeline: ~40,000 deals) as the admin and
    the manager, interleaved with the API's first page of the pipeline's deals
    ``GET /api/v1/deals?pipeline_id=…&limit=50``. Goal: p95 < 50 ms.
(3) First page load: the card page and every stylesheet and script it links, fetched with
    ``Accept-Encoding: gzip`` as a browser would; the bytes on the wire (compressed) per file
    and in total. Goal: < 150 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import random
import re
from dataclasses import dataclass, replace

import httpx

from bench.common import BENCH_PASSWORD, bench_database, open_bench_services, server_version
from bench.crm_core import (
    Request,
    card_sample,
    interleaved,
    line,
    load,
    login,
    readable_clients,
    served,
)
from bench.crm_data import FULL as FULL_WORLD
from bench.crm_data import QUICK as QUICK_WORLD
from bench.crm_data import Person, World, build_world
from bench.crm_data import Sizes as WorldSizes
from crm.platform.app import create_app
from crm.platform.services import Services

GOAL_SECONDS = 0.050
GOAL_BYTES = 150 * 1024
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
_ASSETS = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/static/[^"]+)"')


@dataclass(frozen=True)
class Sizes:
    world: WorldSizes
    requests: int
    warmup: int


FULL = Sizes(FULL_WORLD, requests=300, warmup=20)
QUICK = Sizes(QUICK_WORLD, requests=30, warmup=5)


async def console_session(http: httpx.AsyncClient, slug: str, person: Person) -> httpx.Cookies:
    """Sign in through the console's form; the session's cookie afterwards (the shared client
    keeps no cookies of its own: each request names its principal's)."""
    http.cookies.clear()
    page = await http.get(f"/{slug}/login")
    match = _CSRF.search(page.text)
    assert page.status_code == 200 and match, page.status_code
    signed_in = await http.post(
        f"/{slug}/login",
        data={"_csrf": html.unescape(match.group(1)), "email": person.email, "password": BENCH_PASSWORD},
        cookies=page.cookies,
    )
    assert signed_in.status_code == 303, (signed_in.status_code, signed_in.text[:300])
    session = signed_in.cookies["crm_session"]
    http.cookies.clear()
    return httpx.Cookies({"crm_session": session})


async def run(sizes: Sizes) -> None:
    rng = random.Random(4242)
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=10)
        try:
            print(f"PostgreSQL {await server_version(services.db.pool)}; load average {load()}")
            world = await build_world(services, sizes.world)
            app = create_app(database.settings(), services=services)
            async with app.lifespan(), served(app) as http:
                await measure(services, world, http, sizes, rng)
            print(f"\nLoad average at the end: {load()}")
        finally:
            await services.db.close()


async def measure(services: Services, world: World, http: httpx.AsyncClient, sizes: Sizes, rng: random.Random) -> None:
    tenant = world.big.tenant
    slug, schema = tenant.slug, tenant.schema
    pool = services.db.pool
    people = {"admin": world.big.admin, "manager": world.manager}
    cookies = {key: await console_session(http, slug, person) for key, person in people.items()}
    tokens = {key: await login(http, tenant, person) for key, person in people.items()}
    readable = {
        "admin": await readable_clients(pool, schema, None),
        "manager": await readable_clients(pool, schema, [world.manager.user_id]),
    }
    pipeline_id = await pool.fetchval(f'SELECT id FROM "{schema}".pipelines ORDER BY position, id LIMIT 1')
    deals = await pool.fetchval(f'SELECT count(*) FROM "{schema}".deals WHERE pipeline_id = $1', pipeline_id)
    print(
        f"\nClients: {len(readable['admin']):,} (the manager reads {len(readable['manager']):,}); "
        f"deals in the default pipeline: {deals:,}"
    )

    n = sizes.requests
    print(f"\n(1) Client card page vs the API's JSON card, {n} clients per principal")
    kinds: dict[str, Request] = {}
    for key in people:
        sample = card_sample(rng, readable[key], world.activity_counts, n + sizes.warmup)

        async def page(index: int, key: str = key, sample: list[int] = sample) -> httpx.Response:
            return await http.get(f"/{slug}/clients/{sample[index]}", cookies=cookies[key])

        async def api(index: int, key: str = key, sample: list[int] = sample) -> httpx.Response:
            return await http.get(
                f"/api/v1/clients/{sample[index]}/card", headers={"Authorization": f"Bearer {tokens[key]}"}
            )

        kinds[f"card page, {key}"] = page
        kinds[f"API card, {key}"] = api
    times = await interleaved(kinds, n, sizes.warmup)
    for key, values in times.items():
        print(line(key, values, GOAL_SECONDS if key.startswith("card page") else None))
    for key in people:
        page_p95 = sorted(times[f"card page, {key}"])[int(0.95 * n)]
        api_p95 = sorted(times[f"API card, {key}"])[int(0.95 * n)]
        print(f"  {key}: page / API at p95 = {page_p95 / api_p95:.2f}")

    print(f"\n(2) Deals kanban (pipeline {pipeline_id}) vs the API's first page of its deals, {n} requests each")
    board: dict[str, Request] = {}
    for key in people:

        async def kanban(index: int, key: str = key) -> httpx.Response:
            return await http.get(f"/{slug}/deals?pipeline_id={pipeline_id}", cookies=cookies[key])

        async def listing(index: int, key: str = key) -> httpx.Response:
            return await http.get(
                f"/api/v1/deals?pipeline_id={pipeline_id}&limit=50",
                headers={"Authorization": f"Bearer {tokens[key]}"},
            )

        board[f"kanban page, {key}"] = kanban
        board[f"API deals page, {key}"] = listing
    times = await interleaved(board, n, sizes.warmup)
    for key, values in times.items():
        print(line(key, values, GOAL_SECONDS if key.startswith("kanban") else None))

    print("\n(3) First page load of the card page (gzip on the wire)")
    client_id = readable["admin"][len(readable["admin"]) // 2]
    gzip = {"Accept-Encoding": "gzip"}
    first = await http.get(f"/{slug}/clients/{client_id}", cookies=cookies["admin"], headers=gzip)
    assert first.status_code == 200
    files = [(f"/{slug}/clients/{client_id}", first)]
    for path in dict.fromkeys(_ASSETS.findall(first.text)):
        response = await http.get(path, headers=gzip)
        assert response.status_code == 200, path
        files.append((path, response))
    total = 0
    for path, response in files:
        wire = response.num_bytes_downloaded
        total += wire
        print(f"  {path:48} {wire / 1024:7.1f} KB on the wire ({len(response.content) / 1024:.1f} KB unpacked)")
    verdict = "met" if total < GOAL_BYTES else "MISSED"
    print(f"  total {total / 1024:.1f} KB   goal < {GOAL_BYTES // 1024} KB: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small world and few requests, to smoke-test")
    parser.add_argument("--requests", type=int, default=None, help="requests per principal and page")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    asyncio.run(run(replace(sizes, requests=args.requests or sizes.requests)))


if __name__ == "__main__":
    main()
