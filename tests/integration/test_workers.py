"""Timers on real Dramatiq workers: a real Redis broker (``CRM_TEST_REDIS_URL``), a real
in-process ``dramatiq.Worker`` and the scheduler, on the test database with two tenants.

The worker's threads run the actors on this test's event loop (``attach_loop``), where the
database pool lives; the test app's in-process TimerRunner is paused meanwhile, so only the
scheduler claims. A handler registered here records each run with the schema its tenant
scope saw, so every test also checks that neither tenant's work ran in the other's scope.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import (
    RetryLater,
    Timer,
    in_process_runners_paused,
    run_due,
    schedule,
    timer_handler,
)
from crm.platform.worker.actors import actor, attach_loop, declare_actors, detach_loop, send
from crm.platform.worker.broker import make_broker
from crm.platform.worker.scheduler import Scheduler
from tests.conftest import SignedUpTenant, TenantFactory
from tests.support import ROOT, env_for_cli, unique

RECORD_KIND = "tests_workers.record"
runs: list[tuple[str, str, str]] = []  # (tenant id, schema seen in its scope, label)
behaviour: dict[str, list[BaseException]] = {}  # label -> errors to raise on the next runs


@timer_handler(RECORD_KIND)
async def record_run(tenant: TenantRef, timer: Timer) -> None:
    label = str(timer.payload["label"])
    pending = behaviour.get(label)
    if pending:
        raise pending.pop(0)
    async with tenant_scope(tenant):
        schema = await scope_connection().fetchval("SELECT (current_schemas(false))[1]")
    runs.append((tenant.id, schema, label))


def runs_of(label: str) -> list[tuple[str, str, str]]:
    return [run for run in runs if run[2] == label]


async def two_tenants(make_tenant: TenantFactory) -> tuple[TenantRef, TenantRef]:
    first, second = await make_tenant(), await make_tenant()
    return await _ref(first), await _ref(second)


async def _ref(company: SignedUpTenant) -> TenantRef:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    return tenant


async def add_timer(tenant: TenantRef, label: str, **extra: Any) -> int:
    async with tenant_scope(tenant):
        return await schedule(scope_connection(), RECORD_KIND, tenant.id, {"label": label}, **extra)


async def timer_row(services: Services, timer_id: int) -> dict[str, Any]:
    row = await services.db.pool.fetchrow("SELECT * FROM platform.timers WHERE id = $1", timer_id)
    assert row is not None
    return dict(row)


async def until(condition: Any, *, seconds: float = 30) -> None:
    """Poll (without blocking the loop the workers use) until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def state_is(services: Services, timer_id: int, state: str) -> bool:
    return (await timer_row(services, timer_id))["state"] == state


# --- fixtures: Redis broker, worker, scheduler -------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("CRM_TEST_REDIS_URL")
    if not url:
        pytest.skip("CRM_TEST_REDIS_URL is not set")
    return url


@pytest.fixture
async def broker(redis_url: str, database_url: str) -> AsyncIterator[dramatiq.Broker]:
    # A namespace of this test's own: other runs on the same Redis never see its messages.
    broker = make_broker(redis_url, database_url, namespace=unique("crm-test"))
    declare_actors(broker)
    try:
        yield broker
    finally:
        broker.flush_all()
        broker.close()


@pytest.fixture
async def worker(broker: dramatiq.Broker) -> AsyncIterator[dramatiq.Worker]:
    async with in_process_runners_paused():
        attach_loop(asyncio.get_running_loop())
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            yield worker
        finally:
            # Joining the threads blocks; they may be waiting for this loop.
            await asyncio.to_thread(worker.stop)
            detach_loop()


def enqueue_on(broker: dramatiq.Broker) -> Any:
    def enqueue(groups: Any) -> None:
        for tenant_id, timer_ids in groups:
            send(broker, "timers.run", tenant_id, *timer_ids)

    return enqueue


@pytest.fixture
async def scheduler(
    services: Services, database_url: str, broker: dramatiq.Broker, worker: dramatiq.Worker
) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(services.db.pool, database_url, enqueue_on(broker), poll_seconds=0.1, lock_poll_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(scheduler.became_active.wait(), 10)
    try:
        yield scheduler
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


# --- tests -------------------------------------------------------------------------------------


async def test_a_committed_timer_runs_once_in_its_own_tenant(
    make_tenant: TenantFactory, services: Services, broker: dramatiq.Broker, scheduler: Scheduler
) -> None:
    first, second = await two_tenants(make_tenant)
    label = unique("once")
    ids = [await add_timer(first, label), await add_timer(second, label)]

    await until(lambda: _all_done(services, ids))
    assert sorted(runs_of(label)) == sorted([(first.id, first.schema, label), (second.id, second.schema, label)])
    rows = [await timer_row(services, timer_id) for timer_id in ids]
    assert [(row["state"], row["attempts"]) for row in rows] == [("done", 1), ("done", 1)]

    # The same message again (a broker redelivery): the timer is not queued, nothing runs.
    send(broker, "timers.run", first.id, ids[0])
    send(broker, "timers.run", second.id, ids[0])  # and a message naming the wrong tenant
    await asyncio.to_thread(broker.join, broker.get_actor("timers.run").queue_name, timeout=20_000)
    assert len(runs_of(label)) == 2


async def test_task_reminders_of_two_companies_are_delivered_by_the_workers(
    make_tenant: TenantFactory, http: httpx.AsyncClient, scheduler: Scheduler
) -> None:
    first, second = await make_tenant(), await make_tenant()
    always = {"days": [1, 2, 3, 4, 5, 6, 7], "start": "00:00", "end": "23:59"}  # never quiet hours
    task_ids = {}
    for company in (first, second):
        assert (await http.patch("/api/v1/me", json={"working_hours": always}, headers=company.auth)).is_success
        due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        body = {"title": f"Call {company.slug}", "due_at": due, "remind_before_minutes": [0]}
        response = await http.post("/api/v1/tasks", json=body, headers=company.auth)
        assert response.status_code == 201, response.text
        task_ids[company.slug] = response.json()["id"]

    async def reminded(company: SignedUpTenant) -> list[tuple[str, int]]:
        page = (await http.get("/api/v1/notifications", headers=company.auth)).json()
        return [(item["title"], item["entity_id"]) for item in page["items"]]

    async def both_reminded() -> bool:
        return bool(await reminded(first)) and bool(await reminded(second))

    await until(both_reminded)
    for company in (first, second):  # each its own reminder, once, in its language
        assert await reminded(company) == [(f"Напоминание: Call {company.slug}", task_ids[company.slug])]


async def _all_done(services: Services, ids: list[int]) -> bool:
    return all([await state_is(services, timer_id, "done") for timer_id in ids])


async def test_a_rolled_back_timer_never_runs(
    make_tenant: TenantFactory, services: Services, scheduler: Scheduler
) -> None:
    first, second = await two_tenants(make_tenant)
    label, marker = unique("rolled-back"), unique("marker")

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with tenant_scope(first):
            await schedule(scope_connection(), RECORD_KIND, first.id, {"label": label})
            raise Abandon
    # A timer committed afterwards runs: by then the scheduler has seen everything due.
    after = [await add_timer(first, marker), await add_timer(second, marker)]
    await until(lambda: _all_done(services, after))
    assert runs_of(label) == []
    assert (
        await services.db.pool.fetchval("SELECT count(*) FROM platform.timers WHERE payload->>'label' = $1", label) == 0
    )
    assert {run[:2] for run in runs_of(marker)} == {(first.id, first.schema), (second.id, second.schema)}


async def test_a_timer_whose_worker_died_runs_again(
    make_tenant: TenantFactory, services: Services, scheduler: Scheduler
) -> None:
    first, second = await two_tenants(make_tenant)
    label = unique("orphan")
    # As a worker leaves it when it dies mid-run: taken (one attempt), lease running out.
    orphan = await add_timer(first, label, due_at=None)
    await services.db.pool.execute(
        "UPDATE platform.timers SET state = 'running', attempts = 1, lease_until = now() + interval '1 second'"
        " WHERE id = $1",
        orphan,
    )
    untouched = await add_timer(second, unique("other"))
    await until(lambda: state_is(services, untouched, "done"))
    assert runs_of(label) == []  # its lease had not run out yet

    await until(lambda: state_is(services, orphan, "done"))
    row = await timer_row(services, orphan)
    assert row["attempts"] == 2
    assert runs_of(label) == [(first.id, first.schema, label)]


async def test_only_one_scheduler_claims_and_a_second_takes_over(
    make_tenant: TenantFactory, services: Services, database_url: str, broker: dramatiq.Broker, worker: Any
) -> None:
    first_tenant, second_tenant = await two_tenants(make_tenant)
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def recording(name: str) -> Any:
        send_all = enqueue_on(broker)

        def enqueue(timers: Any) -> None:
            claimed[name].extend(timer_id for _, timer_ids in timers for timer_id in timer_ids)
            send_all(timers)

        return enqueue

    a = Scheduler(services.db.pool, database_url, recording("a"), poll_seconds=0.1, lock_poll_seconds=0.1)
    b = Scheduler(services.db.pool, database_url, recording("b"), poll_seconds=0.1, lock_poll_seconds=0.1)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(stop_a))
    await asyncio.wait_for(a.became_active.wait(), 10)
    task_b = asyncio.create_task(b.run(stop_b))
    try:
        label = unique("lock")
        ids = [await add_timer(first_tenant, label), await add_timer(second_tenant, label)]
        await until(lambda: _all_done(services, ids))
        assert (a.active, b.active) == (True, False)
        assert set(ids) <= set(claimed["a"]) and not claimed["b"]

        # Scheduler a "dies": its lock connection goes away with it.
        stop_a.set()
        await services.db.pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND (classid::bigint << 32) | objid::bigint = $1",
            0x72636D5F73636864,
        )
        await asyncio.wait_for(task_a, 10)
        await asyncio.wait_for(b.became_active.wait(), 10)
        later = [await add_timer(first_tenant, label), await add_timer(second_tenant, label)]
        await until(lambda: _all_done(services, later))
        assert set(later) <= set(claimed["b"]) and not set(later) & set(claimed["a"])
        assert len(runs_of(label)) == 4
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.wait_for(asyncio.gather(task_a, task_b, return_exceptions=True), 10)


async def test_a_failed_job_is_listed_and_retried(
    make_tenant: TenantFactory, services: Services, scheduler: Scheduler, database_url: str, data_dir: Path
) -> None:
    first, second = await two_tenants(make_tenant)
    label, other = unique("broken"), unique("fine")
    behaviour[label] = [ValueError("a bug")]  # a programming error: no automatic retry
    broken = await add_timer(first, label)
    fine = await add_timer(second, other)
    await until(lambda: state_is(services, broken, "failed"))
    await until(lambda: state_is(services, fine, "done"))
    assert (await timer_row(services, broken))["attempts"] == 1

    listed = json.loads(await _crm(database_url, data_dir, "jobs", "failed", "--json"))
    mine = [job for job in listed if job["id"] == broken]
    assert mine and mine[0]["kind"] == RECORD_KIND and mine[0]["last_error"] == "ValueError: a bug"
    assert mine[0]["tenant"] == first.slug
    assert "payload" not in mine[0]  # payloads may hold personal data
    assert fine not in [job["id"] for job in listed]

    assert f"job {broken} queued again" in await _crm(database_url, data_dir, "jobs", "retry", str(broken))
    await until(lambda: state_is(services, broken, "done"))
    assert runs_of(label) == [(first.id, first.schema, label)]
    assert runs_of(other) == [(second.id, second.schema, other)]
    assert broken not in [
        job["id"] for job in json.loads(await _crm(database_url, data_dir, "jobs", "failed", "--json"))
    ]


async def _crm(database_url: str, data_dir: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "crm",
        *args,
        cwd=ROOT,
        env=env_for_cli(database_url, data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


# --- back-off, deterministic (run_due "as of" a moved clock; no broker) --------------------------


async def test_transient_errors_back_off_and_programming_errors_fail_at_once(
    make_tenant: TenantFactory, services: Services
) -> None:
    first, second = await two_tenants(make_tenant)
    flaky, buggy = unique("flaky"), unique("buggy")
    behaviour[flaky] = [ConnectionError("database went away"), RetryLater("mail server said 451")]
    behaviour[buggy] = [KeyError("oops")]
    async with in_process_runners_paused():
        now = await services.db.pool.fetchval("SELECT now()")
        flaky_id = await add_timer(first, flaky, due_at=now - timedelta(seconds=1))
        buggy_id = await add_timer(second, buggy, due_at=now - timedelta(seconds=1))
        await _drain(services, now)
        assert (await timer_row(services, flaky_id))["state"] == "pending"
        row = await timer_row(services, buggy_id)
        assert (row["state"], row["attempts"]) == ("failed", 1)

        # Back-off after attempt 1 is 2 s, after attempt 2 is 4 s — counted from "now".
        await _drain(services, now + timedelta(seconds=1))
        assert (await timer_row(services, flaky_id))["attempts"] == 1
        await _drain(services, now + timedelta(seconds=2.5))
        assert (await timer_row(services, flaky_id))["attempts"] == 2
        await _drain(services, now + timedelta(seconds=5))
        assert (await timer_row(services, flaky_id))["attempts"] == 2
        await _drain(services, now + timedelta(seconds=7))
        row = await timer_row(services, flaky_id)
        assert (row["state"], row["attempts"]) == ("done", 3)
    assert runs_of(flaky) == [(first.id, first.schema, flaky)]
    assert runs_of(buggy) == []


async def _drain(services: Services, now: Any) -> None:
    while await run_due(services.db.pool, now=now, limit=50):
        pass


# --- a single actor on the StubBroker ----------------------------------------------------------

attempts_seen: list[str] = []


@actor("tests_workers.flaky", resolve_tenant=False, max_retries=3, min_backoff_ms=10)
async def flaky_actor(tenant_id: str, key: str) -> None:
    attempts_seen.append(key)
    if key.startswith("transient") and attempts_seen.count(key) < 3:
        raise ConnectionError("try again")
    if key.startswith("bug"):
        raise TypeError("a bug")


async def test_the_actor_wrapper_retries_transient_errors_only() -> None:
    broker = StubBroker()
    broker.emit_after("process_boot")
    declare_actors(broker)
    attach_loop(asyncio.get_running_loop())
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        send(broker, "tests_workers.flaky", "t1", "transient-1")
        send(broker, "tests_workers.flaky", "t2", "bug-1")
        await asyncio.to_thread(broker.join, "default", timeout=20_000, fail_fast=False)
        await asyncio.to_thread(worker.join)
    finally:
        await asyncio.to_thread(worker.stop)
        detach_loop()
    assert attempts_seen.count("transient-1") == 3  # two ConnectionErrors, then done
    assert attempts_seen.count("bug-1") == 1  # no retry for a programming error
    assert [message.args for message in broker.dead_letters] == [("t2", "bug-1")]
    with pytest.raises(TypeError):
        send(broker, "tests_workers.flaky", "t1", {"not": "an id"})  # type: ignore[arg-type]
