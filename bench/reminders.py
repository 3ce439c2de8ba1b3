"""100,000 task reminders due in the same minute across 1,000 companies.

Each company gets one user and 100 tasks whose 15-minute reminders all fall due at the
same instant T0 — the worst case of a minute mark, when every "10:00" task reminds at
09:45:00 — written exactly as ``reschedule_reminders`` writes them: a ``reminders_queue``
row per reminder and one ``reminders.due`` timer per company for the moment.
Lateness is measured from T0 to the console channel's call (``notifications.created_at``
is the channel's clock), then: duplicates (a task with two notices) and missed (a task
with none) are counted from the tables, never assumed.

After each driver, a baseline in the same run: the same notification rows inserted by bare
SQL, one transaction per company — the work no design can skip; the ratio is the figure to
compare across runs on a noisy machine.

Drivers, one after the other on fresh timers (the notices and sent-records of the first
run are cleared in between):

- ``drain``: in this process, ``--concurrency`` loops of ``crm.platform.timers.run_due``;
- ``workers``: the real thing — ``crm scheduler`` and ``crm worker --processes N`` as
  subprocesses on the PostgreSQL broker (or ``--broker-url``).

    .venv/bin/python -m bench.reminders [--tenants 1000] [--per-tenant 100] [--concurrency 8]
        [--drivers drain,workers] [--worker-processes 2] [--worker-threads 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

import crm.tenants.jobs  # noqa: F401 - registers the timer handlers
from bench.common import bench_database, fill_tenants, open_bench_services, percentile, server_version, settle
from crm.platform.timers import run_due, schedule_once

CLI = Path(sys.executable).parent / "crm"
OFFSET = 15
ALWAYS_WORKING = '{"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}'


async def _schemas(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT id, schema_name FROM platform.tenants ORDER BY id")
    return [(row["id"], row["schema_name"]) for row in rows]


async def seed_tasks(pool: asyncpg.Pool, tenants: list[tuple[str, str]], per_tenant: int) -> float:
    """Each company: its user never in quiet hours, ``per_tenant`` open tasks."""
    started = time.perf_counter()
    queue = iter(tenants)

    async def work() -> None:
        for _, schema in queue:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(f'SET LOCAL search_path = "{schema}", public')
                await connection.execute(
                    f"UPDATE users SET working_hours = '{ALWAYS_WORKING}', reminder_minutes = '{{{OFFSET}}}'"
                )
                await connection.execute(
                    "INSERT INTO tasks (title, assignee_id, due_at, remind_before_minutes)"
                    " SELECT 'Bench task ' || g, 1, now() + interval '1 day', ARRAY[$1::int]"
                    " FROM generate_series(1, $2) g",
                    OFFSET,
                    per_tenant,
                )

    await asyncio.gather(*(work() for _ in range(4)))
    return time.perf_counter() - started


async def arm(pool: asyncpg.Pool, tenants: list[tuple[str, str]], t0: datetime) -> float:
    """Move every task to T0 + 15 min and write its reminder timer due at T0 (what
    ``reschedule_reminders`` writes), company by company; a clean slate of notices."""
    started = time.perf_counter()
    due = t0 + timedelta(minutes=OFFSET)
    queue = iter(tenants)

    async def work() -> None:
        for tenant_id, schema in queue:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(f'SET LOCAL search_path = "{schema}", public')
                await connection.execute("TRUNCATE notifications, reminders_sent, reminders_queue")
                await connection.execute("UPDATE tasks SET due_at = $1", due)
                await connection.execute(
                    "INSERT INTO reminders_queue (task_id, user_id, offset_minutes, version, remind_at)"
                    " SELECT id, assignee_id, $1, due_at, $2 FROM tasks",
                    OFFSET,
                    t0,
                )
                await schedule_once(connection, "reminders.due", tenant_id, due_at=t0)

    await asyncio.gather(*(work() for _ in range(4)))
    return time.perf_counter() - started


async def bare_inserts(pool: asyncpg.Pool, tenants: list[tuple[str, str]], concurrency: int) -> float:
    """The baseline, right after a driver: the work no design can skip — each company's
    notification rows inserted from its tasks in one transaction per company (committed
    the way the reminders' are, without waiting for the flush), ``concurrency`` at a time.
    The rows are deleted afterwards."""
    queue = iter(tenants)
    started = time.perf_counter()

    async def work() -> None:
        for _, schema in queue:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SET LOCAL synchronous_commit = off")
                await connection.execute(
                    f'INSERT INTO "{schema}".notifications (user_id, kind, title, body, entity, entity_id)'
                    f" SELECT assignee_id, 'bare', 'Напоминание: ' || title, 'Срок', 'task', id FROM \"{schema}\".tasks"
                )

    await asyncio.gather(*(work() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    for _, schema in tenants:
        await pool.execute(f"DELETE FROM \"{schema}\".notifications WHERE kind = 'bare'")
    return seconds


async def outstanding(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM platform.timers WHERE kind = 'reminders.due' AND state NOT IN ('done', 'failed')"
    )
    return count


async def outcome(pool: asyncpg.Pool, tenants: list[tuple[str, str]], t0: datetime, expected: int) -> dict[str, float]:
    """Lateness of every notice (channel call − T0), duplicates and missed, from the tables."""
    lateness: list[float] = []
    duplicates = 0
    for _, schema in tenants:
        rows = await pool.fetch(
            f'SELECT entity_id, count(*) AS n, min(created_at) AS first FROM "{schema}".notifications'
            " WHERE kind = 'task_reminder' GROUP BY entity_id"
        )
        for row in rows:
            duplicates += row["n"] - 1
            lateness.append((row["first"] - t0).total_seconds())
    failed: int = await pool.fetchval(
        "SELECT count(*) FROM platform.timers WHERE kind = 'reminders.due' AND state = 'failed'"
    )
    return {
        "notices": len(lateness),
        "duplicates": duplicates,
        "missed": expected - len(lateness),
        "failed_timers": failed,
        "p50": percentile(lateness, 50),
        "p99": percentile(lateness, 99),
        "max": max(lateness),
    }


async def wait_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


async def drive_in_process(pool: asyncpg.Pool, t0: datetime, concurrency: int, limit: int) -> float:
    """``concurrency`` loops of run_due in this process from T0 until nothing is left."""
    await wait_until(t0)
    started = time.perf_counter()

    async def loop() -> None:
        while await run_due(pool, limit=limit) or await outstanding(pool):
            pass

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return time.perf_counter() - started


async def drive_workers(
    database_env: dict[str, str], pool: asyncpg.Pool, t0: datetime, processes: int, threads: int
) -> float:
    """``crm scheduler`` + ``crm worker`` started before T0, stopped once all timers ran."""
    env = {**os.environ, **database_env, "CRM_WORKER_METRICS_PORT": "0"}
    started_processes = [
        await asyncio.create_subprocess_exec(str(CLI), "scheduler", env=env),
        await asyncio.create_subprocess_exec(
            str(CLI), "worker", "--processes", str(processes), "--threads", str(threads), env=env
        ),
    ]
    try:
        await wait_until(t0)
        started = time.perf_counter()
        while await outstanding(pool):  # noqa: ASYNC110 - the work happens in other processes
            await asyncio.sleep(0.2)
        return time.perf_counter() - started
    finally:
        for process in started_processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in started_processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


def report(name: str, seconds: float, figures: dict[str, float]) -> str:
    line = (
        f"{name:<40} drained in {seconds:6.1f} s  lateness p50 {figures['p50']:6.2f} s  p99 {figures['p99']:6.2f} s"
        f"  max {figures['max']:6.2f} s  notices {int(figures['notices'])}  duplicates {int(figures['duplicates'])}"
        f"  missed {int(figures['missed'])}  failed timers {int(figures['failed_timers'])}"
    )
    print(line, flush=True)
    return line


async def run(args: argparse.Namespace) -> None:
    async with bench_database() as database:
        env = database.env(**({"CRM_BROKER_URL": args.broker_url} if args.broker_url else {}))
        os.environ.update({key: value for key, value in env.items() if key != "CRM_BROKER_URL"})
        services = await open_bench_services(database, pool_max=args.concurrency + 4)
        pool = services.db.pool
        try:
            print(f"PostgreSQL {await server_version(pool)}, {os.cpu_count()} CPUs", flush=True)
            added, seconds = await fill_tenants(pool, args.tenants)
            print(f"{added} companies in {seconds:.1f} s", flush=True)
            tenants = await _schemas(pool)
            print(f"{args.per_tenant} tasks each in {await seed_tasks(pool, tenants, args.per_tenant):.1f} s")
            expected = len(tenants) * args.per_tenant
            for driver in args.drivers.split(","):
                t0 = datetime.now(UTC) + timedelta(seconds=600)  # moved closer once armed
                armed = await arm(pool, tenants, t0)
                await settle(pool)
                # T0 ahead of now by enough to move every company's queue to it (~10 s for
                # 1,000 under load): every reminder is in place before it falls due.
                new_t0 = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
                await pool.execute(
                    "UPDATE platform.timers SET due_at = $1 WHERE kind = 'reminders.due' AND state = 'pending'", new_t0
                )
                for _, schema in tenants:
                    await pool.execute(f'UPDATE "{schema}".reminders_queue SET remind_at = $1', new_t0)
                print(f"{expected} reminders armed in {armed:.1f} s, due at {new_t0:%H:%M:%S} UTC", flush=True)
                if driver == "drain":
                    name = f"in-process run_due x{args.concurrency} (limit {args.limit})"
                    seconds = await drive_in_process(pool, new_t0, args.concurrency, args.limit)
                else:
                    name = f"crm scheduler + worker {args.worker_processes}p x {args.worker_threads}t"
                    seconds = await drive_workers(env, pool, new_t0, args.worker_processes, args.worker_threads)
                report(name, seconds, await outcome(pool, tenants, new_t0, expected))
                await pool.execute("DELETE FROM platform.timers WHERE kind = 'reminders.due'")
                bare = await bare_inserts(pool, tenants, args.concurrency)
                print(f"{'baseline: bare notification inserts':<40} took   {bare:6.1f} s  ratio {seconds / bare:.2f}")
        finally:
            await services.db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--per-tenant", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8, help="in-process run_due loops")
    parser.add_argument("--limit", type=int, default=20, help="timers one run_due claims")
    parser.add_argument("--drivers", default="drain,workers")
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--broker-url", default=None, help="CRM_BROKER_URL for the workers (default: PostgreSQL)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
