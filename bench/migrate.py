"""Tenant migrations at scale: a real change over 1,000 tenants, ``--check`` over 5,000, and
requests served while the migration rolls.

    .venv/bin/python -m bench.migrate [--quick]

(a) Version 2 (``ALTER TABLE users ADD COLUMN department … DEFAULT ''`` + an index on it)
    over 1,000 tenant schemas with ``migrate_tenants`` at jobs=2 and jobs=4, against a
    baseline in the same run: the same DDL and version bump, one transaction per tenant,
    in a plain loop on one connection (no runner). Between runs the column is dropped again
    and the version set back (not timed).
(b) With 5,000 tenants: ``tenants_behind`` (the query of ``crm migrate --check``), median
    of 20, against a naive check that asks each schema's own catalog one by one; and the
    real CLI ``crm migrate --check`` as a subprocess, median of 5.
(c) The app served by uvicorn in this process while ``python -m bench.migrate_worker``
    (a separate process with its own pool, doing what ``crm migrate`` does) applies version
    2 to the 1,000 tenants; clients loop over ``GET /api/v1/me`` and ``GET /api/v1/users``
    of tenants signed up over HTTP, counting requests and errors by the tenant's version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest.mock import patch

import asyncpg
import httpx
from piccolo.engine.postgres import PostgresTransaction

from bench.common import (
    ADD_DEPARTMENT_SQL,
    BENCH_PASSWORD,
    REMOVE_DEPARTMENT_SQL,
    BenchDatabase,
    bench_database,
    catalog_size,
    fill_tenants,
    migrations_with_department,
    ms,
    open_bench_services,
    p50_p95,
    server_version,
    settle,
    tenant_count,
    timed,
)
from crm.platform import tenancy
from crm.platform.app import create_app
from crm.platform.migrate import migrate_tenants, tenants_behind
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, checked_schema_name
from tests.support import serve

CLI = Path(sys.executable).parent / "crm"
Scope = Callable[[TenantRef], AbstractAsyncContextManager[PostgresTransaction]]


@dataclass(frozen=True)
class Sizes:
    http_tenants: int
    migrated: int
    checked: int
    check_runs: int
    cli_runs: int
    rolling_timeout: float
    idle_seconds: float
    rounds: int


FULL = Sizes(
    http_tenants=12,
    migrated=1000,
    checked=5000,
    check_runs=20,
    cli_runs=5,
    rolling_timeout=300,
    idle_seconds=5,
    rounds=3,
)
QUICK = Sizes(
    http_tenants=4, migrated=40, checked=60, check_runs=5, cli_runs=2, rolling_timeout=60, idle_seconds=1, rounds=1
)


# --- (a) one change over every tenant -------------------------------------------------------


async def plain_loop(pool: asyncpg.Pool) -> int:
    """The baseline: the same DDL and version bump, tenant after tenant on one connection."""
    async with pool.acquire() as connection:
        rows = await connection.fetch("SELECT schema_name FROM platform.tenants WHERE schema_version < 2")
        for row in rows:
            schema = checked_schema_name(row["schema_name"])
            await connection.execute(
                f'BEGIN; SET LOCAL search_path = "{schema}", public; {ADD_DEPARTMENT_SQL};'
                f" UPDATE platform.tenants SET schema_version = 2, updated_at = now() WHERE schema_name = '{schema}';"
                " COMMIT"
            )
    return len(rows)


async def revert(pool: asyncpg.Pool, *, jobs: int = 4) -> None:
    """Put every tenant back at version 1 (column and index dropped); not measured."""
    rows = iter(await pool.fetch("SELECT id, schema_name FROM platform.tenants WHERE schema_version = 2"))

    async def work() -> None:
        async with pool.acquire() as connection:
            for row in rows:  # shared iterator: each tenant once
                schema = checked_schema_name(row["schema_name"])
                async with connection.transaction():
                    await connection.execute(f'SET LOCAL search_path = "{schema}", public; {REMOVE_DEPARTMENT_SQL}')
                    await connection.execute("UPDATE platform.tenants SET schema_version = 1 WHERE id = $1", row["id"])

    await asyncio.gather(*(work() for _ in range(jobs)))


async def bench_change(services: Services, rounds: int) -> None:
    """Baseline, jobs=2 and jobs=4 in turn, ``rounds`` times; medians and ratios at the end."""
    pool = services.db.pool
    count = await tenant_count(pool)
    print(f"\n(a) version 2 (add column with default + index) over {count} tenant schemas, {rounds} round(s)")
    walls: dict[str, list[float]] = {"plain loop": [], "jobs=2": [], "jobs=4": []}
    for _ in range(rounds):
        walls["plain loop"].append(await timed(plain_loop(pool)))
        await revert(pool)
        for jobs in (2, 4):
            started = time.perf_counter()
            results = await migrate_tenants(pool, migrations_with_department(), jobs=jobs)
            walls[f"jobs={jobs}"].append(time.perf_counter() - started)
            failed = sum(not result.ok for result in results)
            print(
                f"  jobs={jobs}: migrated {len(results) - failed}, failed {failed},"
                f" per tenant {p50_p95([result.seconds for result in results])}"
            )
            await revert(pool)
    baseline = statistics.median(walls["plain loop"])
    for name, values in walls.items():
        label = "baseline: plain loop, one connection, no runner" if name == "plain loop" else f"ours: {name}"
        runs = ", ".join(f"{value:.1f}" for value in values)
        median = statistics.median(values)
        print(f"  {label:50} median {median:6.1f} s  (runs: {runs})  ratio to baseline {median / baseline:5.2f}x")
    print("  goal: 1,000 tenants < 60 s")


# --- (c) requests while the migration rolls ---------------------------------------------------


@dataclass(frozen=True)
class HttpTenant:
    slug: str
    token: str


@dataclass
class Traffic:
    requests: Counter[int] = field(default_factory=Counter)  # by the tenant's version at request start
    errors: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def _address() -> str:
    return f"198.18.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


async def sign_up(client: httpx.AsyncClient, count: int) -> list[HttpTenant]:
    tenants: list[HttpTenant] = []
    for _ in range(count):
        slug = f"http-{secrets.token_hex(5)}"
        email = f"owner@{slug}.example"
        body = {
            "company": "Acme Trading",
            "slug": slug,
            "edition": "business",
            "admin_email": email,
            "admin_password": BENCH_PASSWORD,
            "admin_name": "Olga Petrova",
            "locale": "ru",
            "timezone": "Europe/Moscow",
        }
        response = await client.post("/api/v1/signup", json=body, headers={"X-Forwarded-For": _address()})
        response.raise_for_status()
        login = {"tenant": slug, "email": email, "password": BENCH_PASSWORD}
        token = await client.post("/api/v1/auth/token", json=login, headers={"X-Forwarded-For": _address()})
        token.raise_for_status()
        tenants.append(HttpTenant(slug, token.json()["access_token"]))
    return tenants


async def drive(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    tenants: list[HttpTenant],
    running: Callable[[], bool],
    deadline: float,
) -> Traffic:
    """GET /me and /users round-robin over ``tenants`` while ``running()``, at most until ``deadline``."""
    traffic = Traffic()

    async def loop(offset: int) -> None:
        turn = offset
        while running() and time.monotonic() < deadline:
            tenant = tenants[turn % len(tenants)]
            turn += 1
            version = int(
                await pool.fetchval("SELECT schema_version FROM platform.tenants WHERE slug = $1", tenant.slug)
            )
            for path in ("/api/v1/me", "/api/v1/users"):
                started = time.perf_counter()
                try:
                    response = await client.get(path, headers={"Authorization": f"Bearer {tenant.token}"})
                    ok, detail = response.is_success, f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                traffic.latencies.append(time.perf_counter() - started)
                traffic.requests[version] += 1
                if not ok:
                    traffic.errors[version] += 1
                    if len(traffic.examples) < 5:
                        traffic.examples.append(f"{path} v{version}: {detail}")

    await asyncio.gather(*(loop(offset) for offset in range(4)))
    return traffic


def counting_stale(scope: Scope, seen: list[str]) -> Scope:
    """``tenant_scope`` that notes each stale cached statement leaving it, for
    ``read_in_tenant``, which retries those: a retry is no error, but it is counted."""

    @asynccontextmanager
    async def counted(tenant: TenantRef) -> AsyncIterator[PostgresTransaction]:
        try:
            async with scope(tenant) as transaction:
                yield transaction
        except asyncpg.InvalidCachedStatementError as exc:
            seen.append(f"{tenant.slug}: {exc}")
            raise

    return counted


async def bench_rolling(
    services: Services, database: BenchDatabase, base_url: str, tenants: list[HttpTenant], sizes: Sizes
) -> None:
    stale: list[str] = []
    with patch.object(tenancy, "tenant_scope", counting_stale(tenancy.tenant_scope, stale)):
        await rolling(services, database, base_url, tenants, sizes, stale)


async def rolling(
    services: Services,
    database: BenchDatabase,
    base_url: str,
    tenants: list[HttpTenant],
    sizes: Sizes,
    stale: list[str],
) -> None:
    pool = services.db.pool
    count = await tenant_count(pool)
    print(f"\n(c) requests while version 2 rolls over {count} tenants (migration in a subprocess, jobs=4)")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        idle = await drive(client, pool, tenants, lambda: True, time.monotonic() + sizes.idle_seconds)
    stale_before = len(stale)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.migrate_worker",
        "--jobs",
        "4",
        env={**os.environ, **database.env()},
        stdout=asyncio.subprocess.PIPE,
    )
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            traffic = await drive(
                client, pool, tenants, lambda: worker.returncode is None, time.monotonic() + sizes.rolling_timeout
            )
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=sizes.rolling_timeout)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    wall = time.perf_counter() - started
    summary = json.loads(output.decode().strip().splitlines()[-1])
    total, errors = sum(traffic.requests.values()), sum(traffic.errors.values())
    print(
        f"  migration: {summary['migrated']} migrated, {summary['failed']} failed in {summary['seconds']:.1f} s"
        f" (worker process {wall:.1f} s incl. start-up) {summary['errors']}"
    )
    for version in sorted(traffic.requests):
        print(
            f"  requests on tenants at version {version}: {traffic.requests[version]}, errors {traffic.errors[version]}"
        )
    print(f"  total requests {total}, errors {errors} (goal: 0); request latency {p50_p95(traffic.latencies)}")
    ratio = statistics.median(traffic.latencies) / statistics.median(idle.latencies)
    print(
        f"  baseline, same loop for {sizes.idle_seconds:.0f} s before the migration: {sum(idle.requests.values())}"
        f" requests, errors {sum(idle.errors.values())}, latency {p50_p95(idle.latencies)};"
        f" p50 during / before: {ratio:.2f}x"
    )
    for example in traffic.examples:
        print(f"    error: {example}")
    print(
        f"  stale cached statements retried by read_in_tenant: {len(stale) - stale_before} during,"
        f" {stale_before} before {stale[:3]}"
    )
    behind = await tenants_behind(pool, 2)
    print(f"  tenants still behind version 2 afterwards: {len(behind)}")


# --- (b) what is pending ------------------------------------------------------------------------


async def naive_check(pool: asyncpg.Pool) -> int:
    """Baseline: ask each schema's own catalog, one schema after another, whether it has v2."""
    behind = 0
    async with pool.acquire() as connection:
        for row in await connection.fetch("SELECT schema_name FROM platform.tenants WHERE status <> 'deleted'"):
            has_it = await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1)"
                " AND attname = 'department' AND NOT attisdropped)",
                f'"{row["schema_name"]}".users',
            )
            behind += not has_it
    return behind


def run_cli(database: BenchDatabase, *args: str) -> tuple[float, int, int]:
    """Run ``crm <args>``; return (seconds, exit code, lines on stdout)."""
    started = time.perf_counter()
    done = subprocess.run(  # bounded by the timeout
        [str(CLI), *args], env={**os.environ, **database.env()}, capture_output=True, text=True, timeout=120
    )
    return time.perf_counter() - started, done.returncode, len(done.stdout.splitlines())


def cli_median(database: BenchDatabase, runs: int, *args: str) -> str:
    results = [run_cli(database, *args) for _ in range(runs)]
    codes = sorted({code for _, code, _ in results})
    lines = results[-1][2]
    return f"median {ms(statistics.median(s for s, _, _ in results))}  exit {codes}  stdout lines {lines}  (n={runs})"


async def bench_check(services: Services, database: BenchDatabase, sizes: Sizes) -> None:
    pool = services.db.pool
    count = await tenant_count(pool)
    at_2 = await pool.fetchval("SELECT count(*) FROM platform.tenants WHERE schema_version = 2")
    print(f"\n(b) what is pending, {count} tenants ({at_2} at version 2, the rest at 1)")
    behind_2 = [await timed(tenants_behind(pool, 2)) for _ in range(sizes.check_runs)]
    behind_1 = [await timed(tenants_behind(pool, 1)) for _ in range(sizes.check_runs)]
    found = len(await tenants_behind(pool, 2))
    naive_runs = [await timed(naive_check(pool)) for _ in range(max(1, sizes.check_runs // 4))]
    naive_found = await naive_check(pool)
    ours = statistics.median(behind_2)
    print(f"  ours: tenants_behind(target=2) -> {found} rows          median {ms(ours)}  (n={len(behind_2)})")
    print(f"  ours: tenants_behind(target=1) -> 0 rows             median {ms(statistics.median(behind_1))}")
    naive = statistics.median(naive_runs)
    print(
        f"  baseline: per-schema catalog check -> {naive_found} behind   median {ms(naive)}  (n={len(naive_runs)})"
        f"   ratio to ours {naive / ours:.0f}x"
    )
    print(f"  CLI `crm --help` (interpreter start-up floor):     {cli_median(database, sizes.cli_runs, '--help')}")
    print(
        "  CLI `crm migrate --check`, all up to date:          "
        + cli_median(database, sizes.cli_runs, "migrate", "--check")
    )
    # The CLI checks against the code's own migrations (version 1): mark every tenant at 0.
    await pool.execute("UPDATE platform.tenants SET schema_version = 0")
    print(
        f"  CLI `crm migrate --check`, all {count} behind:       "
        + cli_median(database, sizes.cli_runs, "migrate", "--check")
    )
    print("  goal: --check across 5,000 < 2 s")


async def run(sizes: Sizes) -> None:
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=8)
        try:
            pool = services.db.pool
            print(f"PostgreSQL {await server_version(pool)}; {os.cpu_count()} CPUs")
            async with serve(create_app(database.settings(), services=services)) as base_url:
                async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                    tenants = await sign_up(client, sizes.http_tenants)
                added, seconds = await fill_tenants(pool, sizes.migrated)
                print(
                    f"signed up {len(tenants)} tenants over HTTP; filled {added} in bulk in {seconds:.1f} s;"
                    f" CHECKPOINT after it {await settle(pool):.1f} s"
                )
                await bench_change(services, sizes.rounds)
                await bench_rolling(services, database, base_url, tenants, sizes)
            added, seconds = await fill_tenants(pool, sizes.checked)
            print(
                f"\nfilled {added} more tenants in bulk in {seconds:.1f} s ({added / max(seconds, 1e-9):.0f}/s);"
                f" CHECKPOINT after it {await settle(pool):.1f} s; {await catalog_size(pool)}"
            )
            await bench_check(services, database, sizes)
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to smoke-test the benchmark")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    asyncio.run(run(QUICK if args.quick else FULL))


if __name__ == "__main__":
    main()
