"""Audit log: what one audit row adds to a change, and ``crm audit verify`` over 1,000,000 rows.

    .venv/bin/python -m bench.audit [--quick] [--changes N] [--rows N]

(1) Write overhead. In one provisioned tenant, N small changes (``UPDATE users SET name``),
    each in its own ``tenant_scope`` transaction: (a) the change alone, (b) the change plus
    one ``record_audit`` in the same transaction; interleaved change by change (the order
    alternates). Then throughput with 1 writer, 8 writers on one tenant (each its own
    user row, so only the audit head's row lock is shared) and 8 writers on 8 tenants,
    (a) and (b) in turn, median of 3 rounds. The chains are verified afterwards.
(2) Verify. One tenant's chain (its 2 signup rows) is continued to 1,000,000 rows hashed
    in Python with the product's ``row_hash``/``_content``/``clean_changes`` and loaded
    with ``COPY`` (the append-only triggers fire on UPDATE/DELETE/TRUNCATE only); the head
    is set to match, then VACUUM ANALYZE and CHECKPOINT. ``verify_chain`` checks the fill.
    Timed in rounds, median of 3: ``SELECT count(*)``, a plain read of the same columns
    through the same cursor without hashing, ``verify_chain`` in this process, and the real
    CLI ``crm audit verify <slug>`` as a subprocess (must exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec

from bench.common import (
    BenchDatabase,
    bench_database,
    ms,
    open_bench_services,
    p50_p95,
    percentile,
    server_version,
    settle,
)
from bench.provisioning import signup_request
from crm.platform.services import Services
from crm.platform.signup import provision_tenant
from crm.platform.tenancy import TenantRef, checked_schema_name, scope_connection, set_tenant_search_path, tenant_scope
from crm.tenants.audit.services import (
    _VERIFY_COLUMNS,
    Actor,
    Changes,
    _canonical,
    _content,
    clean_changes,
    record_audit,
    row_hash,
    verify_chain,
)

T = TypeVar("T")
CLI = Path(sys.executable).parent / "crm"
ACTOR = Actor(kind="user", label="bench", channel="api", id=1)
WRITERS = 8
FALLBACK_ROWS = 300_000
COPY_COLUMNS = (
    "id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "channel",
    "action",
    "entity",
    "entity_id",
    "changes",
    "request_id",
    "client_address",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class Sizes:
    changes: int  # interleaved pairs in (1)
    per_case: int  # changes per throughput case and round
    rounds: int
    rows: int  # audit rows in (2)
    runs: int  # timed runs of each kind in (2)
    fill_budget: float  # seconds; past it the fill stops at FALLBACK_ROWS


FULL = Sizes(changes=2000, per_case=800, rounds=3, rows=1_000_000, runs=3, fill_budget=360)
QUICK = Sizes(changes=200, per_case=80, rounds=1, rows=20_000, runs=2, fill_budget=60)


# --- (1) write overhead ---------------------------------------------------------------------

_names = itertools.count()


async def change(tenant: TenantRef, user_id: int, audited: bool, names: dict[tuple[str, int], str]) -> float:
    """One change in its own tenant scope (with its audit row if ``audited``); its seconds."""
    old, new = names.get((tenant.id, user_id), "Bench Admin"), f"Bench User {next(_names)}"
    started = time.perf_counter()
    async with tenant_scope(tenant):
        await scope_connection().execute("UPDATE users SET name = $1 WHERE id = $2", new, user_id)
        if audited:
            await record_audit(ACTOR, "user.updated", entity="user", entity_id=user_id, changes={"name": (old, new)})
    names[(tenant.id, user_id)] = new
    return time.perf_counter() - started


async def throughput(
    writers: list[tuple[TenantRef, int]], audited: bool, total: int, names: dict[tuple[str, int], str]
) -> float:
    """Changes per second with one concurrent loop per (tenant, user) writer."""
    per_writer = total // len(writers)

    async def loop(tenant: TenantRef, user_id: int) -> None:
        for _ in range(per_writer):
            await change(tenant, user_id, audited, names)

    started = time.perf_counter()
    await asyncio.gather(*(loop(tenant, user_id) for tenant, user_id in writers))
    return per_writer * len(writers) / (time.perf_counter() - started)


async def add_users(tenant: TenantRef, count: int) -> list[int]:
    async with tenant_scope(tenant):
        rows = await scope_connection().fetch(
            "INSERT INTO users (email, name, password_hash, role)"
            " SELECT 'writer' || n || '@bench.example', 'Writer ' || n, 'x', 'manager' FROM generate_series(1, $1) n"
            " RETURNING id",
            count,
        )
    return [int(row["id"]) for row in rows]


async def chain_state(services: Services, tenant: TenantRef) -> str:
    async def check(connection: asyncpg.Connection) -> str:
        report = await verify_chain(connection)
        return f"{'intact' if report.intact else 'BROKEN: ' + str(report.reason)} ({report.rows} rows)"

    return await in_tenant(services.db.pool, tenant.schema, check)


async def bench_writes(services: Services, tenants: list[TenantRef], sizes: Sizes) -> None:
    main, names = tenants[0], dict[tuple[str, int], str]()
    print(f"\n(1) audit write overhead: tenant {main.slug}, {sizes.changes} changes of each kind, interleaved")
    for index in range(20):  # warm the pool, the statement caches and the code paths
        await change(main, 1, bool(index % 2), names)
    plain: list[float] = []
    audited: list[float] = []
    for index in range(sizes.changes):
        for kind in (False, True) if index % 2 == 0 else (True, False):
            (audited if kind else plain).append(await change(main, 1, kind, names))
    a50, b50, a95, b95 = (percentile(v, q) for v, q in ((plain, 50), (audited, 50), (plain, 95), (audited, 95)))
    paired = statistics.median(b - a for a, b in zip(plain, audited, strict=True))
    print(f"  (a) UPDATE users alone, own transaction        {p50_p95(plain)}")
    print(f"  (b) UPDATE users + record_audit, same txn      {p50_p95(audited)}")
    print(f"  overhead b-a: p50 {ms(b50 - a50)}  p95 {ms(b95 - a95)}  median of paired differences {ms(paired)}")
    print(f"  ratio b/a:    p50 {b50 / a50:6.2f}x   p95 {b95 / a95:6.2f}x")

    extra = await add_users(main, WRITERS - 1)
    cases = {
        "1 writer, 1 tenant": [(main, 1)],
        f"{WRITERS} writers, 1 tenant (own user row each)": [(main, 1)] + [(main, user) for user in extra],
        f"{WRITERS} writers, {WRITERS} tenants": [(tenant, 1) for tenant in tenants[:WRITERS]],
    }
    results: dict[tuple[str, bool], list[float]] = {(case, kind): [] for case in cases for kind in (False, True)}
    for _ in range(sizes.rounds):
        for case, writers in cases.items():
            for kind in (False, True):
                results[(case, kind)].append(await throughput(writers, kind, sizes.per_case, names))
    print(f"\n  throughput, changes/s (median of {sizes.rounds} rounds of {sizes.per_case} changes)")
    print(f"  {'':44} {'(a) alone':>10} {'(b) +audit':>11} {'b/a':>6}")
    for case in cases:
        a, b = statistics.median(results[(case, False)]), statistics.median(results[(case, True)])
        print(f"  {case:44} {a:10.0f} {b:11.0f} {b / a:6.2f}")
    print(f"  chain of {main.slug}: {await chain_state(services, main)}")
    others = [await chain_state(services, tenant) for tenant in tenants[1:WRITERS]]
    print(f"  chains of the other {len(others)} tenants: {sorted(set(s.split(' (')[0] for s in others))}")


# --- (2) verify -------------------------------------------------------------------------------

ACTIONS: tuple[tuple[str, str], ...] = (
    ("client.updated", "client"),
    ("user.updated", "user"),
    ("client.created", "client"),
    ("deal.stage_changed", "deal"),
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def make_rows(first_id: int, count: int, prev: str) -> tuple[list[tuple[Any, ...]], str]:
    """``count`` chained rows from ``first_id``, hashed as ``record_audit`` hashes them."""
    records: list[tuple[Any, ...]] = []
    for row_id in range(first_id, first_id + count):
        action, entity = ACTIONS[row_id % len(ACTIONS)]
        occurred_at = START + timedelta(microseconds=row_id * 731_013)
        user = row_id % 40
        actor = ("user", user + 1, f"manager{user}@bench.example", "api", f"{row_id:032x}", f"10.0.{user}.7")
        if action == "client.created":
            raw: Changes = {
                "name": (None, f"ООО Ромашка {row_id}"),
                "phone": (None, "+7 900 000-00-00"),
                "owner_id": (None, 3),
            }
        elif action == "deal.stage_changed":
            raw = {"stage": ("new", "negotiation"), "amount": (120000, 125000 + row_id % 1000)}
        else:
            raw = {"name": (f"Client {row_id - 1}", f"Client {row_id}")}
        changes = clean_changes(raw)
        entity_id = str(row_id % 5000)
        digest = row_hash(prev, _content(occurred_at, actor, action, entity, entity_id, changes))
        records.append(
            (row_id, occurred_at, *actor[:4], action, entity, entity_id, json.dumps(changes), *actor[4:], prev, digest)
        )
        prev = digest
    return records, prev


async def fill_audit(services: Services, tenant: TenantRef, target: int, budget: float, batch: int = 50_000) -> int:
    """Continue ``tenant``'s chain to ``target`` rows by COPY; returns the rows it ends with."""
    pool = services.db.pool
    schema = checked_schema_name(tenant.schema)
    head = await pool.fetchrow(f'SELECT last_hash, row_count FROM "{schema}".audit_head WHERE id = 1')
    last_id = await pool.fetchval(f'SELECT coalesce(max(id), 0) FROM "{schema}".audit_log')
    assert head is not None and last_id == head["row_count"], "the tenant's chain must have ids 1..row_count"
    done, prev, started = int(head["row_count"]), str(head["last_hash"]), time.perf_counter()
    # Hash the next batch in a thread while the server takes the COPY of this one.
    pending = asyncio.create_task(asyncio.to_thread(make_rows, done + 1, min(batch, target - done), prev))
    while True:
        records, prev = await pending
        done += len(records)
        projected = (time.perf_counter() - started) / (done - head["row_count"]) * (target - head["row_count"])
        if projected > budget and target > FALLBACK_ROWS:
            target = max(FALLBACK_ROWS, done)
            print(f"  fill projected {projected:.0f} s > budget {budget:.0f} s: stopping at {target} rows")
        if done < target:
            pending = asyncio.create_task(asyncio.to_thread(make_rows, done + 1, min(batch, target - done), prev))
        await pool.copy_records_to_table("audit_log", records=records, columns=COPY_COLUMNS, schema_name=schema)
        if done >= target:
            break
    await pool.execute(f'UPDATE "{schema}".audit_head SET last_hash = $1, row_count = $2 WHERE id = 1', prev, done)
    await pool.execute(f"SELECT setval(pg_get_serial_sequence('\"{schema}\".audit_log', 'id'), $1)", done)
    return done


async def in_tenant(pool: asyncpg.Pool, schema: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work`` in a read-only transaction on the tenant's search_path, as the CLI runs it."""
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        await set_tenant_search_path(connection, schema)
        return await work(connection)


async def count_rows(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM audit_log")
    return count


async def plain_read(connection: asyncpg.Connection, batch: int = 10_000) -> int:
    """What verify_chain reads, through the same cursor, without hashing anything."""
    rows = 0
    async for _ in connection.cursor(f"SELECT {_VERIFY_COLUMNS} FROM audit_log ORDER BY id", prefetch=batch):
        rows += 1
    return rows


async def verified_rows(connection: asyncpg.Connection) -> int:
    report = await verify_chain(connection)
    assert report.intact, f"the chain is broken at {report.broken_at}: {report.reason}"
    return report.rows


def run_cli(database: BenchDatabase, *args: str) -> tuple[float, float, int, str]:
    """Run ``crm <args>``; return (wall seconds, child CPU seconds, exit code, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(  # bounded by the timeout
        [str(CLI), *args], env={**os.environ, **database.env()}, capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.returncode, (done.stdout + done.stderr).strip()


def per_row_split(records: list[asyncpg.Record]) -> dict[str, float]:
    """Cumulative seconds per row of verify_chain's Python steps, on rows already in memory
    (nothing is kept between rows, as in verify_chain, so the GC does not distort it)."""

    def content(row: asyncpg.Record) -> dict[str, Any]:
        actor = (row["actor_kind"], row["actor_id"], row["actor_label"], row["channel"])
        return _content(
            row["occurred_at"],
            (*actor, row["request_id"], row["client_address"]),
            row["action"],
            row["entity"],
            row["entity_id"],
            msgspec.json.decode(row["changes"]),
        )

    steps: dict[str, Callable[[asyncpg.Record], object]] = {
        "record access + _content + decode(changes)": content,
        "  + canonical encoding (msgspec, sorted keys)": lambda row: _canonical.encode(content(row)),
        "  + sha256 (= row_hash, all of verify's Python)": lambda row: row_hash(row["prev_hash"], content(row)),
    }
    split: dict[str, float] = {}
    for name, step in steps.items():
        started = time.perf_counter()
        for row in records:
            step(row)
        split[name] = (time.perf_counter() - started) / len(records)
    return split


async def bench_verify(services: Services, database: BenchDatabase, tenant: TenantRef, sizes: Sizes) -> None:
    pool = services.db.pool
    print(f"\n(2) crm audit verify: tenant {tenant.slug}, chain continued to {sizes.rows:,} rows")
    started = time.perf_counter()
    rows = await fill_audit(services, tenant, sizes.rows, sizes.fill_budget)
    fill = time.perf_counter() - started
    size = await pool.fetchval(f"SELECT pg_size_pretty(pg_total_relation_size('\"{tenant.schema}\".audit_log'))")
    started = time.perf_counter()
    await pool.execute(f'VACUUM ANALYZE "{tenant.schema}".audit_log')
    vacuum = time.perf_counter() - started
    print(
        f"  filled {rows:,} rows in {fill:.1f} s ({rows / fill:,.0f} rows/s); audit_log {size};"
        f" VACUUM ANALYZE {vacuum:.1f} s; CHECKPOINT {await settle(pool):.1f} s"
    )
    started = time.perf_counter()
    checked = await in_tenant(pool, tenant.schema, verified_rows)
    print(f"  fill is valid: verify_chain intact, {checked:,} rows, first run {time.perf_counter() - started:.1f} s")
    assert checked == rows

    help_runs = [run_cli(database, "--help")[0] for _ in range(sizes.runs)]
    kinds: dict[str, list[float]] = {"count": [], "read": [], "verify": [], "cli": []}
    cli_cpu: list[float] = []
    outputs: set[str] = set()
    for _ in range(sizes.runs):  # one of each per round, so that noise hits all alike
        for kind, work in (("count", count_rows), ("read", plain_read), ("verify", verified_rows)):
            started = time.perf_counter()
            assert await in_tenant(pool, tenant.schema, work) == rows
            kinds[kind].append(time.perf_counter() - started)
        wall, cpu, code, output = run_cli(database, "audit", "verify", tenant.slug)
        assert code == 0, f"crm audit verify exited {code}: {output}"
        kinds["cli"].append(wall)
        cli_cpu.append(cpu)
        outputs.add(output)
    print(f"  CLI output: {' | '.join(sorted(outputs))}")
    labels = {
        "count": "baseline: SELECT count(*) FROM audit_log",
        "read": "baseline: plain read, same cursor & columns, no hashing",
        "verify": "ours: verify_chain() in process",
        "cli": "ours: CLI `crm audit verify <slug>` (exit 0)",
    }
    medians = {kind: statistics.median(values) for kind, values in kinds.items()}
    print(f"  {'':60} {'median':>9} {'rows/s':>11}  runs (s)")
    for kind, label in labels.items():
        runs = ", ".join(f"{v:.2f}" for v in kinds[kind])
        print(f"  {label:60} {medians[kind]:8.2f}s {rows / medians[kind]:11,.0f}  {runs}")
    print(f"  CLI `crm --help` (interpreter start-up floor): median {ms(statistics.median(help_runs))}")
    print(f"  CLI process CPU (user+sys): median {statistics.median(cli_cpu):.2f} s")
    read, verify = medians["read"], medians["verify"]
    print(
        f"  verify_chain / plain read {verify / read:.2f}x: reading {read:.2f} s,"
        f" Python per row (content, JSON, hash) {verify - read:.2f} s = {(verify - read) / rows * 1e6:.1f} µs/row"
    )
    sample = min(rows, 100_000)
    records = await in_tenant(
        pool, tenant.schema, lambda c: c.fetch(f"SELECT {_VERIFY_COLUMNS} FROM audit_log ORDER BY id LIMIT {sample}")
    )
    print(f"  verify_chain's Python work per row, cumulative ({sample:,} rows in memory):")
    for step, seconds in per_row_split(records).items():
        print(f"    {step:50} {seconds * 1e6:6.2f} µs/row")
    cli = medians["cli"]
    if rows == 1_000_000:
        verdict = f"{'met' if cli < 30 else 'MISSED'}: CLI median {cli:.1f} s"
    else:  # the CLI's fixed cost (start-up, connect) plus verify_chain's rate, scaled linearly
        extrapolated = cli - verify + verify * 1_000_000 / rows
        verdict = (
            f"{'met' if extrapolated < 30 else 'MISSED'} by extrapolation: CLI {cli:.1f} s for {rows:,} rows"
            f" -> {cli - verify:.1f} s fixed + {verify * 1_000_000 / rows:.1f} s verify_chain = {extrapolated:.1f} s"
        )
    print(f"  goal: crm audit verify < 30 s for 1,000,000 rows: {verdict}")


async def run(sizes: Sizes) -> None:
    async with bench_database() as database:
        services = await open_bench_services(database, pool_max=WRITERS + 2)
        try:
            print(f"PostgreSQL {await server_version(services.db.pool)}; {os.cpu_count()} CPUs")
            tenants: list[TenantRef] = []
            for _ in range(WRITERS + 1):  # 8 writing tenants, and one whose chain is filled
                provisioned = await provision_tenant(services.db, services.editions, signup_request())
                tenants.append(provisioned.tenant)
            await bench_writes(services, tenants[:WRITERS], sizes)
            await bench_verify(services, database, tenants[WRITERS], sizes)
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to smoke-test the benchmark")
    parser.add_argument("--changes", type=int, default=None, help="interleaved changes of each kind in (1)")
    parser.add_argument("--rows", type=int, default=None, help="audit rows to verify in (2) (default 1,000,000)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    asyncio.run(run(replace(sizes, changes=args.changes or sizes.changes, rows=args.rows or sizes.rows)))


if __name__ == "__main__":
    main()
