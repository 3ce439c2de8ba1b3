"""How fast the brokers move messages: the PostgreSQL broker against Redis, in the same run.

A trivial actor (it only counts) isolates the broker from our own work. Each round, for each
broker in turn: ``--messages`` messages are sent from one thread (as the scheduler sends
them), then a ``dramatiq.Worker`` with ``--threads`` threads consumes them all. Brokers take
turns round by round, so a noisy neighbour slows them alike; medians over the rounds and
their ratios are printed.

- ``pg-sync``: dramatiq-postgres on the database URL as given — every send and every
  acknowledgement a synchronous commit (how ``make_broker`` built it before);
- ``pg``: ``make_broker`` with ``CRM_BROKER_URL`` unset (asynchronous commits for the
  broker's sessions, crm/platform/worker/broker.py);
- ``redis``: ``make_broker`` on ``--redis-url`` (default ``CRM_TEST_REDIS_URL``), keys
  under a namespace of this run's own, flushed at the end.

    .venv/bin/python -m bench.broker [--messages 2000] [--threads 8] [--rounds 3] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import dramatiq

from bench.common import bench_database
from crm.platform.migrations.m0006_workers import BROKER_SQL
from crm.platform.worker.broker import POSTGRES_SCHEMA, make_broker


@dataclass
class Counter:
    """What the actor does: count, and say when the round's messages are all in."""

    expected: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)

    def start(self, expected: int) -> None:
        with self.lock:
            self.expected, self.done = expected, 0
            self.finished.clear()

    def hit(self, number: int) -> None:
        with self.lock:
            self.done += 1
            if self.done >= self.expected:
                self.finished.set()


@dataclass
class Rates:
    send: list[float] = field(default_factory=list)
    consume: list[float] = field(default_factory=list)


def one_round(
    broker: dramatiq.Broker, actor: dramatiq.Actor[[int], None], counter: Counter, args: argparse.Namespace
) -> tuple[float, float]:
    """Send ``args.messages``, then consume them with a fresh worker; (sent/s, consumed/s)."""
    counter.start(args.messages)
    started = time.perf_counter()
    for number in range(args.messages):
        actor.send(number)
    sent = args.messages / (time.perf_counter() - started)
    worker = dramatiq.Worker(broker, worker_threads=args.threads)
    started = time.perf_counter()
    worker.start()
    try:
        if not counter.finished.wait(args.timeout):
            raise RuntimeError(f"only {counter.done} of {args.messages} messages consumed in {args.timeout} s")
        consumed = args.messages / (time.perf_counter() - started)
    finally:
        worker.stop()
    return sent, consumed


def make_subject(
    name: str, build: Callable[[], dramatiq.Broker]
) -> tuple[dramatiq.Broker, dramatiq.Actor[[int], None], Counter]:
    broker = build()
    counter = Counter()
    actor: dramatiq.Actor[[int], None] = dramatiq.Actor(
        counter.hit, broker=broker, actor_name="bench.count", queue_name="default", priority=0, options={}
    )
    return broker, actor, counter


async def prepare(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(BROKER_SQL)  # the broker's tables, as platform migration m0006 makes them
        return await server_version_of(connection)
    finally:
        await connection.close()


async def server_version_of(connection: asyncpg.Connection) -> str:
    version: str = await connection.fetchval("SHOW server_version")
    return version


def run(args: argparse.Namespace, database_url: str) -> None:
    from dramatiq_postgres import PostgresBroker

    builders: dict[str, Callable[[], dramatiq.Broker]] = {
        "pg-sync": lambda: PostgresBroker(url=database_url, results=False, schema=POSTGRES_SCHEMA),
        "pg": lambda: make_broker(None, database_url),
    }
    if args.redis_url:
        namespace = f"crm-bench-{secrets.token_hex(4)}"
        builders["redis"] = lambda: make_broker(args.redis_url, database_url, namespace=namespace)
    rates = {name: Rates() for name in builders}
    for round_number in range(1, args.rounds + 1):
        for name, build in builders.items():
            broker, actor, counter = make_subject(name, build)
            try:
                sent, consumed = one_round(broker, actor, counter, args)
            finally:
                if name == "redis":
                    broker.flush_all()
                broker.close()
            rates[name].send.append(sent)
            rates[name].consume.append(consumed)
            print(f"round {round_number} {name:8} sent {sent:7.0f} msg/s  consumed {consumed:7.0f} msg/s", flush=True)
    print(f"\nmedians of {args.rounds} rounds, {args.messages} messages, {args.threads} worker threads:")
    medians = {name: (statistics.median(r.send), statistics.median(r.consume)) for name, r in rates.items()}
    for name, (sent, consumed) in medians.items():
        print(f"  {name:8} sent {sent:7.0f} msg/s  consumed {consumed:7.0f} msg/s")
    pg_send, pg_consume = medians["pg"]
    sync_send, sync_consume = medians["pg-sync"]
    print(f"  pg / pg-sync: sent x{pg_send / sync_send:.2f}, consumed x{pg_consume / sync_consume:.2f}")
    if "redis" in medians:
        redis_send, redis_consume = medians["redis"]
        print(f"  redis / pg:   sent x{redis_send / pg_send:.2f}, consumed x{redis_consume / pg_consume:.2f}")
        print(f"  redis / pg-sync: sent x{redis_send / sync_send:.2f}, consumed x{redis_consume / sync_consume:.2f}")


async def main(args: argparse.Namespace) -> None:
    async with bench_database() as database:
        version = await prepare(database.url)
        print(f"PostgreSQL {version}, {os.cpu_count()} CPUs, Redis: {args.redis_url or 'not measured'}", flush=True)
        await asyncio.to_thread(run, args, database.url)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a round may take")
    parser.add_argument("--redis-url", default=os.environ.get("CRM_TEST_REDIS_URL"))
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
