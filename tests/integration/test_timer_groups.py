"""Timers of one company and kind run as a group, and finished timers are purged.

A batch handler registered here records each call: the tenant, the schema its scope saw and
the labels of the timers it got — so the tests see how timers were grouped and that no
group ever mixed two companies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import (
    MAX_GROUP,
    RetryLater,
    Timer,
    group_claimed,
    in_process_runners_paused,
    purge_done,
    run_due,
    schedule,
    take,
    timer_batch_handler,
)
from crm.platform.worker.scheduler import Scheduler
from tests.conftest import TenantFactory
from tests.support import unique

GROUP_KIND = "tests_groups.record"
calls: list[tuple[str, str, list[str]]] = []  # (tenant id, schema seen, labels)
failing: set[str] = set()  # labels whose group raises RetryLater


@timer_batch_handler(GROUP_KIND)
async def record_group(tenant: TenantRef, timers: Sequence[Timer]) -> None:
    labels = [str(timer.payload["label"]) for timer in timers]
    if failing.intersection(labels):
        raise RetryLater("the remote side is down")
    async with tenant_scope(tenant):
        schema = await scope_connection().fetchval("SELECT (current_schemas(false))[1]")
    calls.append((tenant.id, schema, labels))


@pytest.fixture
async def paused() -> AsyncIterator[None]:
    # Only this test's run_due claims: the test app's own runner would take the timers.
    async with in_process_runners_paused():
        yield


async def two_companies(make_tenant: TenantFactory) -> tuple[TenantRef, TenantRef]:
    refs = []
    for company in (await make_tenant(), await make_tenant()):
        tenant = await load_tenant(slug=company.slug)
        assert tenant is not None
        refs.append(tenant)
    return refs[0], refs[1]


async def add(tenant: TenantRef, label: str, kind: str = GROUP_KIND) -> int:
    async with tenant_scope(tenant):
        return await schedule(scope_connection(), kind, tenant.id, {"label": label})


async def states(services: Services, ids: list[int]) -> list[str]:
    rows = await services.db.pool.fetch("SELECT id, state FROM platform.timers WHERE id = ANY($1::bigint[])", ids)
    by_id = {row["id"]: row["state"] for row in rows}
    return [by_id.get(timer_id, "gone") for timer_id in ids]


async def test_a_companys_timers_due_together_run_in_one_call_never_mixed(
    make_tenant: TenantFactory, services: Services, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("group")
    ids = [await add(first, f"{label}-a{i}") for i in range(3)] + [await add(second, f"{label}-b{i}") for i in range(2)]
    # Due at the same instant, as a minute's reminders are.
    await services.db.pool.execute(
        "UPDATE platform.timers SET due_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])", ids
    )

    while await run_due(services.db.pool, limit=50):
        pass

    mine = [call for call in calls if call[2][0].startswith(label)]
    schemas = {first.id: first.schema, second.id: second.schema}
    assert sorted((tenant_id, sorted(labels)) for tenant_id, _, labels in mine) == sorted(
        [(first.id, [f"{label}-a{i}" for i in range(3)]), (second.id, [f"{label}-b{i}" for i in range(2)])]
    )
    for tenant_id, schema, labels in mine:
        assert schema == schemas[tenant_id]
        letter = "a" if tenant_id == first.id else "b"
        assert all(each.startswith(f"{label}-{letter}") for each in labels)  # never the other company's
    assert await states(services, ids) == ["done"] * 5


async def test_a_failing_group_is_retried_as_a_whole_with_back_off(
    make_tenant: TenantFactory, services: Services, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("retry")
    failing.add(f"{label}-a0")
    ids = [await add(first, f"{label}-a{i}") for i in range(2)]
    other = await add(second, f"{label}-b0")
    await services.db.pool.execute(
        "UPDATE platform.timers SET due_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])", [*ids, other]
    )

    while await run_due(services.db.pool, limit=50):
        pass

    rows = await services.db.pool.fetch(
        "SELECT id, state, attempts, due_at > now() AS later, last_error FROM platform.timers"
        " WHERE id = ANY($1::bigint[]) ORDER BY id",
        ids,
    )
    assert [(row["state"], row["attempts"], row["later"]) for row in rows] == [("pending", 1, True)] * 2
    assert all("remote side is down" in row["last_error"] for row in rows)
    # The other company's timer is not held back by this one's failure.
    assert await states(services, [other]) == ["done"]


async def test_a_message_takes_only_the_timers_still_queued(
    make_tenant: TenantFactory, services: Services, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("take")
    ids = [await add(first, f"{label}-{i}") for i in range(3)]
    foreign = await add(second, f"{label}-other")
    await services.db.pool.execute(
        "UPDATE platform.timers SET state = 'queued' WHERE id = ANY($1::bigint[])", [*ids, foreign]
    )
    await services.db.pool.execute("UPDATE platform.timers SET state = 'done' WHERE id = $1", ids[1])

    # A message naming another company's timer cannot take it.
    taken = await take(services.db.pool, [ids[2], ids[1], ids[0], foreign], first.id)

    assert [timer.id for timer in taken] == [ids[2], ids[0]]
    assert all(timer.attempts == 1 and timer.tenant_id == first.id for timer in taken)
    assert await states(services, [*ids, foreign]) == ["running", "done", "running", "queued"]
    assert await take(services.db.pool, [ids[0]], first.id) == []  # a second delivery does nothing


async def test_groups_follow_company_and_kind_and_are_bounded() -> None:
    def row(tenant: str, kind: str, timer_id: int) -> dict[str, object]:
        return {"tenant_id": tenant, "kind": kind, "id": timer_id}

    rows = [row("t1", GROUP_KIND, 1), row("t1", "mail.send", 2), row("t1", "mail.send", 3), row("t2", GROUP_KIND, 4)]
    rows += [row("t1", GROUP_KIND, 10 + i) for i in range(MAX_GROUP)]
    groups = [[item["id"] for item in group] for group in group_claimed(rows)]  # type: ignore[arg-type]

    assert groups[:4] == [[1, *range(10, 10 + MAX_GROUP - 1)], [2], [3], [4]]
    assert groups[4:] == [[10 + MAX_GROUP - 1]]


async def test_done_timers_are_purged_after_the_keeping_time_failed_ones_stay(
    make_tenant: TenantFactory, services: Services, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("purge")
    old_done, recent_done, old_failed, pending = [await add(first, f"{label}-{i}") for i in range(4)]
    other_old_done = await add(second, f"{label}-other")
    pool = services.db.pool
    await pool.execute(
        "UPDATE platform.timers SET state = 'done', finished_at = now() - interval '8 days'"
        " WHERE id = ANY($1::bigint[])",
        [old_done, other_old_done],
    )
    await pool.execute(
        "UPDATE platform.timers SET state = 'done', finished_at = now() - interval '1 day' WHERE id = $1", recent_done
    )
    await pool.execute(
        "UPDATE platform.timers SET state = 'failed', finished_at = now() - interval '30 days' WHERE id = $1",
        old_failed,
    )
    await pool.execute("UPDATE platform.timers SET due_at = now() + interval '1 hour' WHERE id = $1", pending)

    while await purge_done(pool, kept=timedelta(days=7), limit=1):
        pass

    assert await states(services, [old_done, other_old_done, recent_done, old_failed, pending]) == [
        "gone",
        "gone",
        "done",
        "failed",
        "pending",
    ]


async def test_the_scheduler_commits_its_claim_before_a_worker_can_take_the_message(
    make_tenant: TenantFactory, services: Services, database_url: str, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("claim")
    ids = [await add(first, f"{label}-a"), await add(second, f"{label}-b")]
    await services.db.pool.execute(
        "UPDATE platform.timers SET due_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])", ids
    )
    loop = asyncio.get_running_loop()
    taken: dict[str, list[int]] = {}

    def enqueue_and_take_at_once(groups: Sequence[tuple[str, list[int]]]) -> None:
        # A worker as fast as can be: it takes each message the moment it is sent.
        for tenant_id, timer_ids in groups:
            timers = asyncio.run_coroutine_threadsafe(take(services.db.pool, timer_ids, tenant_id), loop).result()
            taken.setdefault(tenant_id, []).extend(timer.id for timer in timers)

    scheduler = Scheduler(services.db.pool, database_url, enqueue_and_take_at_once)
    while await scheduler.tick():
        pass

    assert taken.get(first.id, [])[-1:] == ids[:1] and taken.get(second.id, [])[-1:] == ids[1:]
    assert await states(services, ids) == ["running", "running"]


async def test_timers_whose_messages_could_not_be_sent_go_back_to_pending(
    make_tenant: TenantFactory, services: Services, database_url: str, paused: None
) -> None:
    first, second = await two_companies(make_tenant)
    label = unique("unsent")
    ids = [await add(first, f"{label}-a"), await add(second, f"{label}-b")]
    await services.db.pool.execute(
        "UPDATE platform.timers SET due_at = now() - interval '1 second' WHERE id = ANY($1::bigint[])", ids
    )

    def broker_down(groups: Sequence[tuple[str, list[int]]]) -> None:
        raise ConnectionError("the broker is unreachable")

    with pytest.raises(ConnectionError):
        await Scheduler(services.db.pool, database_url, broker_down).tick()

    assert await states(services, ids) == ["pending", "pending"]
