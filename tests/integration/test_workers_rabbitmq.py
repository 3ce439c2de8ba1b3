"""Timers on real Dramatiq workers over RabbitMQ (``CRM_TEST_AMQP_URL``): the broker
``make_broker`` builds for an ``amqp://`` URL, a real in-process ``dramatiq.Worker`` and the
scheduler, on the test database with two tenants — the same path as the Redis tests in
test_workers.py, whose recording handler and helpers this module shares.

RabbitMQ queues are global to a virtual host, so ``timers.run`` is bound here to a queue
of this test's own (other runs on the same server never take its messages), deleted at
the end with its delay and dead-letter queues.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from crm.platform.services import Services
from crm.platform.timers import in_process_runners_paused
from crm.platform.worker.actors import attach_loop, declare_actors, detach_loop
from crm.platform.worker.broker import broker_kind, make_broker
from crm.platform.worker.scheduler import Scheduler
from tests.conftest import TenantFactory
from tests.integration import test_workers as on_redis
from tests.integration.test_workers import enqueue_on
from tests.support import unique


@pytest.fixture
def amqp_url() -> str:
    url = os.environ.get("CRM_TEST_AMQP_URL")
    if not url:
        pytest.skip("CRM_TEST_AMQP_URL is not set (e.g. amqp://guest:guest@127.0.0.1:5672/)")
    return url


@pytest.fixture
async def broker(amqp_url: str, database_url: str) -> AsyncIterator[dramatiq.Broker]:
    broker = make_broker(amqp_url, database_url)
    assert broker_kind(amqp_url) == "rabbitmq" and isinstance(broker, RabbitmqBroker)
    actors = declare_actors(broker)
    # The real timers.run actor (our wrapper, its retry options), on a queue of this test's own.
    queue = unique("crm_test_timers").replace("-", "_")
    timers_run = broker.actors.pop("timers.run")
    assert timers_run is actors["timers.run"]
    dramatiq.Actor(
        timers_run.fn,
        broker=broker,
        actor_name=timers_run.actor_name,
        queue_name=queue,
        priority=timers_run.priority,
        options=timers_run.options,
    )
    try:
        yield broker
    finally:
        channel = broker.channel
        for name in (queue, dq_name(queue), xq_name(queue)):
            channel.queue_delete(name)
        broker.close()


@pytest.fixture
async def scheduler(services: Services, database_url: str, broker: dramatiq.Broker) -> AsyncIterator[Scheduler]:
    """A worker (two threads, on this test's loop) and the active scheduler, both on RabbitMQ."""
    async with in_process_runners_paused():
        attach_loop(asyncio.get_running_loop())
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        scheduler = Scheduler(
            services.db.pool, database_url, enqueue_on(broker), poll_seconds=0.1, lock_poll_seconds=0.1
        )
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run(stop))
        try:
            await asyncio.wait_for(scheduler.became_active.wait(), 10)
            yield scheduler
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            # Joining the threads blocks; they may be waiting for this loop.
            await asyncio.to_thread(worker.stop)
            detach_loop()


# The Redis tests' bodies, run on this module's RabbitMQ broker and scheduler.


async def test_a_committed_timer_runs_once_in_its_own_tenant_over_rabbitmq(
    make_tenant: TenantFactory, services: Services, broker: dramatiq.Broker, scheduler: Scheduler
) -> None:
    await on_redis.test_a_committed_timer_runs_once_in_its_own_tenant(make_tenant, services, broker, scheduler)


async def test_a_rolled_back_timer_never_reaches_rabbitmq(
    make_tenant: TenantFactory, services: Services, scheduler: Scheduler
) -> None:
    await on_redis.test_a_rolled_back_timer_never_runs(make_tenant, services, scheduler)
