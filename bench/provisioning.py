"""Tenant provisioning latency: signup to a seeded schema, with 0, 1,000 and 5,000 tenants.

    .venv/bin/python -m bench.provisioning [--quick] [--signups N]

Per level, interleaved one after another so that noise hits all alike, N times each:

* ours: ``provision_tenant`` end to end (validation, argon2 hash, tenant row, schema by the
  one-step DDL, seeded edition defaults, admin user, identity; one transaction), with its
  argon2 call timed by wrapping ``hash_password`` for the run (the hash runs in a worker
  thread while the transaction builds the schema, so the two overlap);
* ours, schema part only: tenant row + ``CREATE SCHEMA`` + the one-step DDL, one transaction;
* baseline "replay real history": tenant row + schema, then each migration of
  ``tenant_migrations()`` in its own transaction with its own version bump (today: 1);
* baseline "replay synthetic history": the same with 30 small migrations ending in the same
  shape (bench/history.py).

Existing tenants are made in bulk (bench/common.py: real schemas by the one-step DDL, a
tenant row and an admin user each, several connections at once); the time it takes is
printed too. The schemas the baselines create are dropped after each level.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from unittest.mock import patch

import asyncpg

from bench.common import (
    BENCH_PASSWORD,
    bench_database,
    catalog_size,
    fill_tenants,
    open_bench_services,
    p50_p95,
    percentile,
    server_version,
    settle,
    tenant_count,
    timed,
)
from bench.history import replay, same_shape, synthetic_migrations
from crm.platform import signup
from crm.platform.migrate import latest_version, tenant_migrations
from crm.platform.services import Services
from crm.platform.signup import SignupRequest, provision_tenant
from crm.platform.tenancy import checked_schema_name
from crm.tenants.schema import current_schema_ddl

FULL_LEVELS = (0, 1000, 5000)
QUICK_LEVELS = (0, 30)

KINDS = {
    "provision": "ours: provision_tenant (full signup, incl. argon2)",
    "argon2": "   argon2 hash_password inside it (a worker thread, overlapping the transaction)",
    "provision_db": "   full minus argon2 (understates the transaction, which overlaps the hash)",
    "one_step": "ours: schema part only (row + CREATE SCHEMA + one-step DDL)",
    "replay_real": "baseline: replay real history (tenant_migrations(): {real} migration(s))",
    "replay_30": "baseline: replay synthetic history ({synthetic} migrations, same final shape)",
}


@dataclass
class Level:
    existing: int
    catalog: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})


def _new_id() -> str:
    return f"x{secrets.token_hex(8)}"[:12]


def signup_request() -> SignupRequest:
    slug = f"bench-{secrets.token_hex(5)}"
    return SignupRequest(
        company="Bench Trading",
        slug=slug,
        edition="business",
        admin_email=f"owner@{slug}.example",
        admin_password=BENCH_PASSWORD,
        admin_name="Olga Petrova",
        locale="ru",
        timezone="Europe/Moscow",
    )


async def one_step_schema(connection: asyncpg.Connection, tenant_id: str, schema: str) -> None:
    ddl = ";\n".join(current_schema_ddl())
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO platform.tenants (id, slug, name, schema_name, edition, schema_version)"
            " VALUES ($1, $2, 'One step', $3, 'business', $4)",
            tenant_id,
            f"onestep-{tenant_id}",
            schema,
            latest_version(tenant_migrations()),
        )
        await connection.execute(f'CREATE SCHEMA "{checked_schema_name(schema)}"')
        await connection.execute(f'SET LOCAL search_path = "{schema}", public; {ddl}')


async def drop_scratch_tenants(pool: asyncpg.Pool) -> None:
    """Drop what the schema-only and replay measurements made (not real signups)."""
    rows = await pool.fetch(
        "SELECT id, schema_name FROM platform.tenants WHERE slug LIKE 'onestep-%' OR slug LIKE 'replay-%'"
    )
    async with pool.acquire() as connection:
        for row in rows:
            async with connection.transaction():
                await connection.execute(f'DROP SCHEMA IF EXISTS "{checked_schema_name(row["schema_name"])}" CASCADE')
                await connection.execute("DELETE FROM platform.tenants WHERE id = $1", row["id"])


def timing(hash_function: Callable[[str], Awaitable[str]], into: list[float]) -> Callable[[str], Awaitable[str]]:
    """``hash_function`` that records how long each call took."""

    async def timed_hash(password: str) -> str:
        started = time.perf_counter()
        try:
            return await hash_function(password)
        finally:
            into.append(time.perf_counter() - started)

    return timed_hash


async def measure_level(services: Services, existing: int, signups: int) -> Level:
    pool = services.db.pool
    level = Level(existing, await catalog_size(pool))
    real, synthetic = tenant_migrations(), synthetic_migrations()
    hashes: list[float] = []
    # The same provision_tenant, with its argon2 call timed, to split the latency.
    with patch.object(signup, "hash_password", timing(signup.hash_password, hashes)):
        async with pool.acquire() as connection:
            for _ in range(signups):
                total = await timed(provision_tenant(services.db, services.editions, signup_request()))
                level.samples["provision"].append(total)
                level.samples["argon2"].append(hashes[-1])
                level.samples["provision_db"].append(total - hashes[-1])
                for kind, make in (
                    ("one_step", lambda c, i, s: one_step_schema(c, i, s)),
                    ("replay_real", lambda c, i, s: replay(c, i, s, real)),
                    ("replay_30", lambda c, i, s: replay(c, i, s, synthetic)),
                ):
                    tenant_id = _new_id()
                    schema = f"t_{tenant_id}"
                    level.samples[kind].append(await timed(make(connection, tenant_id, schema)))
    await drop_scratch_tenants(pool)
    return level


async def check_synthetic_history(pool: asyncpg.Pool) -> bool:
    """The synthetic history must end in the shape the one-step DDL makes."""
    replayed, one_step = _new_id(), _new_id()
    async with pool.acquire() as connection:
        await replay(connection, replayed, f"t_{replayed}", synthetic_migrations())
        await one_step_schema(connection, one_step, f"t_{one_step}")
        same = await same_shape(connection, f"t_{replayed}", f"t_{one_step}")
    await drop_scratch_tenants(pool)
    return same


def report(levels: list[Level]) -> None:
    labels = {
        kind: label.format(real=len(tenant_migrations()), synthetic=len(synthetic_migrations()))
        for kind, label in KINDS.items()
    }
    for level in levels:
        print(f"\n== {level.existing} tenants already present ({level.catalog}) ==")
        for kind, label in labels.items():
            print(f"  {label:72} {p50_p95(level.samples[kind])}")
        p50 = {kind: percentile(values, 50) for kind, values in level.samples.items()}
        p95 = {kind: percentile(values, 95) for kind, values in level.samples.items()}
        for baseline in ("replay_real", "replay_30"):
            for ours in ("one_step", "provision_db", "provision"):
                print(
                    f"  ratio {baseline + ' / ' + ours:26}  p50 {p50[baseline] / p50[ours]:6.2f}x"
                    f"   p95 {p95[baseline] / p95[ours]:6.2f}x"
                )
    first, last = levels[0], levels[-1]
    print(f"\np50 at {last.existing} tenants / p50 at {first.existing} tenants (goal: provision p50 < 150 ms, flat):")
    for kind in KINDS:
        growth = percentile(last.samples[kind], 50) / percentile(first.samples[kind], 50)
        print(f"  {kind:14} {growth:5.2f}x")


async def run(levels: tuple[int, ...], signups: int) -> None:
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=6)
        try:
            pool = services.db.pool
            print(f"PostgreSQL {await server_version(pool)}; {os.cpu_count()} CPUs; {signups} signups per level")
            print(f"synthetic history ends in the one-step shape: {await check_synthetic_history(pool)}")
            for _ in range(3):  # warm the pool, the caches and the code paths; not measured
                await provision_tenant(services.db, services.editions, signup_request())
            measured: list[Level] = []
            for existing in levels:
                added, seconds = await fill_tenants(pool, existing)
                if added:
                    print(
                        f"filled {added} tenants in bulk in {seconds:.1f} s ({added / seconds:.0f} tenants/s);"
                        f" CHECKPOINT after it {await settle(pool):.1f} s"
                    )
                measured.append(await measure_level(services, await tenant_count(pool), signups))
                print(f"level {existing}: measured", flush=True)
            report(measured)
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.provisioning", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to smoke-test the benchmark")
    parser.add_argument("--signups", type=int, default=None, help="signups measured per level (default 50)")
    args = parser.parse_args()
    levels = QUICK_LEVELS if args.quick else FULL_LEVELS
    signups = args.signups or (5 if args.quick else 50)
    asyncio.run(run(levels, signups))


if __name__ == "__main__":
    main()
