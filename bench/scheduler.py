"""The scheduler's claim query: its cost with 10 tenants against 10,000 tenants holding the
same number of due timers (goal: ratio under 1.2).

Two databases, same platform schema: in one, 10 tenants; in the other, 10,000. Each holds
DUE timers due now, spread evenly over its tenants, and every tenant also holds FUTURE
not-yet-due timers and DONE finished ones — so the 10,000-tenant table is ~1,000 times
larger, as it would be. Tenants are platform rows only (the claim never touches a tenant
schema). One measurement: ``claim_due(limit=BATCH, state='queued')`` — the scheduler's
exact query — in a transaction that is rolled back, so every run claims the same rows.
The two worlds are measured alternately, ROUNDS times each; medians and their ratio are
printed.

    CRM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.scheduler
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import asyncpg

from bench.common import bench_database, ms, percentile, server_version
from crm.platform.migrate import migrate_platform
from crm.platform.timers import claim_due

DUE = 5_000
FUTURE_PER_TENANT = int(os.environ.get("BENCH_FUTURE_PER_TENANT", "20"))
DONE_PER_TENANT = int(os.environ.get("BENCH_DONE_PER_TENANT", "20"))
BATCH = 500
ROUNDS = 200


async def build_world(pool: asyncpg.Pool, tenants: int) -> int:
    await migrate_platform(pool)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            """
            INSERT INTO platform.tenants (id, slug, name, schema_name, edition)
            SELECT 'b' || n, 'bench-' || n, 'Bench ' || n, 't_b' || n, 'business' FROM generate_series(1, $1) n
            """,
            tenants,
        )
        # Due now, spread evenly over the tenants.
        await connection.execute(
            """
            INSERT INTO platform.timers (tenant_id, kind, payload, due_at)
            SELECT 'b' || (1 + n % $1), 'reminders.deliver', jsonb_build_object('n', n),
                   now() - interval '1 minute' + n * interval '1 millisecond'
            FROM generate_series(1, $2) n
            """,
            tenants,
            DUE,
        )
        # Every tenant's later reminders and its finished history.
        await connection.execute(
            """
            INSERT INTO platform.timers (tenant_id, kind, payload, due_at)
            SELECT 'b' || t, 'reminders.deliver', '{}', now() + (1 + f) * interval '1 hour'
            FROM generate_series(1, $1) t, generate_series(1, $2) f
            """,
            tenants,
            FUTURE_PER_TENANT,
        )
        await connection.execute(
            """
            INSERT INTO platform.timers (tenant_id, kind, payload, due_at, state, attempts, finished_at)
            SELECT 'b' || t, 'reminders.deliver', '{}', now() - f * interval '1 hour', 'done', 1, now()
            FROM generate_series(1, $1) t, generate_series(1, $2) f
            """,
            tenants,
            DONE_PER_TENANT,
        )
    async with pool.acquire() as connection:
        await connection.execute("VACUUM ANALYZE platform.timers")
        rows: int = await connection.fetchval("SELECT count(*) FROM platform.timers")
    return rows


async def claim_once(pool: asyncpg.Pool) -> float:
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            started = time.perf_counter()
            rows = await claim_due(connection, limit=BATCH, state="queued")
            elapsed = time.perf_counter() - started
            assert len(rows) == BATCH
        finally:
            await transaction.rollback()
    return elapsed


async def plan(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            from crm.platform.timers import _CLAIM

            now = await connection.fetchval("SELECT now()")
            lines = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {_CLAIM}", BATCH, 600, now, "queued")
        finally:
            await transaction.rollback()
    return "\n".join("    " + line[0] for line in lines)


async def main() -> None:
    async with bench_database() as small_db, bench_database() as large_db:
        small = await asyncpg.create_pool(small_db.url, min_size=1, max_size=2)
        large = await asyncpg.create_pool(large_db.url, min_size=1, max_size=2)
        try:
            print(f"PostgreSQL {await server_version(small)}")
            started = time.perf_counter()
            small_rows = await build_world(small, 10)
            large_rows = await build_world(large, 10_000)
            print(f"built in {time.perf_counter() - started:.1f} s: {DUE} due timers in each world;")
            print(f"  10 tenants: {small_rows:,} timer rows;  10,000 tenants: {large_rows:,} timer rows")
            for _ in range(20):  # warm caches and plans
                await claim_once(small)
                await claim_once(large)
            timings: dict[str, list[float]] = {"10": [], "10000": []}
            for _ in range(ROUNDS):
                timings["10"].append(await claim_once(small))
                timings["10000"].append(await claim_once(large))
            for key, label in (("10", "10 tenants    "), ("10000", "10,000 tenants")):
                values = timings[key]
                print(
                    f"claim {BATCH} of {DUE} due, {label}: median {ms(statistics.median(values))}"
                    f"  p95 {ms(percentile(values, 95))}  (n={len(values)})"
                )
            ratio = statistics.median(timings["10000"]) / statistics.median(timings["10"])
            print(f"ratio 10,000 / 10 tenants: {ratio:.2f}  (goal < 1.2)")
            print("plan, 10,000 tenants:")
            print(await plan(large))
        finally:
            await small.close()
            await large.close()


if __name__ == "__main__":
    asyncio.run(main())
