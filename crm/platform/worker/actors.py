"""Our ``actor()`` wrapper over Dramatiq, and the generic ``timers.run`` actor.

An actor is declared once with a dotted name (``timers.run``); its messages carry the
tenant id and ids only (JSON-safe). The wrapper resolves the tenant and names it in logs
and Sentry, runs the async function on this process's event loop (where the database pool
lives), retries transient errors (database or network unreachable) with exponential
back-off, and lets programming errors fail at once: their messages go to the broker's dead
letters, which keep them (Redis a week, PostgreSQL 30 days, RabbitMQ's ``.XQ`` queue).

Actors are bound to a broker by :func:`declare_actors` — nothing is bound at import time,
so tests can bind the same actors to a Redis broker and to a StubBroker.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq

from crm.platform.observability import bind_log_tenant, tag_sentry_scope
from crm.platform.tenancy import TenantRef
from crm.platform.timers import is_transient

log = logging.getLogger(__name__)

ACTOR_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
DEFAULT_QUEUE = "default"
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 5 * 60_000

F = TypeVar("F", bound=Callable[..., Awaitable[None]])
T = TypeVar("T")


@dataclass(frozen=True)
class ActorSpec:
    name: str
    function: Callable[..., Awaitable[None]]
    queue: str
    max_retries: int
    time_limit_seconds: int
    # False: the function receives the tenant id as sent (``timers.run`` closes the timer
    # of a deleted tenant itself); True: a TenantRef, and a deleted tenant's work is dropped.
    resolve_tenant: bool
    min_backoff_ms: int = MIN_BACKOFF_MS


_specs: dict[str, ActorSpec] = {}


def actor(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = 5,
    time_limit_seconds: int = 3600,
    resolve_tenant: bool = True,
    min_backoff_ms: int = MIN_BACKOFF_MS,
) -> Callable[[F], F]:
    """Declare ``async def f(tenant: TenantRef, *ids)`` as the actor ``name``; send it with
    ``send(broker, name, tenant_id, *ids)``. The function must be idempotent: a message
    may be delivered twice."""
    if not ACTOR_NAME.fullmatch(name):
        raise ValueError(f"actor names are dotted lower-case words (area.verb), got {name!r}")

    def register(function: F) -> F:
        if name in _specs:
            raise ValueError(f"an actor named {name!r} exists already")
        _specs[name] = ActorSpec(name, function, queue, max_retries, time_limit_seconds, resolve_tenant, min_backoff_ms)
        return function

    return register


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind every declared actor to ``broker``; return them by name."""
    import crm.tenants.jobs  # noqa: F401 - registers the timer handlers timers.run dispatches to

    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for spec in _specs.values():
        actors[spec.name] = dramatiq.Actor(
            _entry(spec),
            broker=broker,
            actor_name=spec.name,
            queue_name=spec.queue,
            priority=0,
            options={
                "max_retries": spec.max_retries,
                "retry_when": _retry_when(spec.max_retries),
                "min_backoff": spec.min_backoff_ms,
                "max_backoff": MAX_BACKOFF_MS,
                "time_limit": spec.time_limit_seconds * 1000,
            },
        )
    return actors


def send(broker: dramatiq.Broker, name: str, tenant_id: str, *ids: int | str) -> dramatiq.Message[Any]:
    """Enqueue ``name(tenant_id, *ids)`` on ``broker`` (declared there by declare_actors).
    Call it only after the transaction that decided the work has committed — or schedule a
    timer instead, which does that for you."""
    for value in ids:
        if not isinstance(value, int | str):
            raise TypeError(f"actor arguments are ids (int or str), got {type(value).__name__}")
    message: dramatiq.Message[Any] = broker.get_actor(name).send(tenant_id, *ids)
    return message


def _retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    def retry_when(retries: int, error: BaseException) -> bool:
        return retries < max_retries and is_transient(error)

    return retry_when


def _entry(spec: ActorSpec) -> Callable[..., None]:
    """The function a worker thread calls: runs the actor on the process's event loop."""

    def run(tenant_id: str, *ids: Any) -> None:
        try:
            actor_loop().run(_invoke(spec, tenant_id, ids))
        except BaseException:
            # The Dramatiq integration reports the error from this thread: name the tenant
            # (an opaque id, not personal data).
            _tag_thread_scope(tenant_id)
            raise

    run.__name__ = spec.name.replace(".", "_")
    run.__module__ = spec.function.__module__
    return run


async def _invoke(spec: ActorSpec, tenant_id: str, ids: tuple[Any, ...]) -> None:
    import sentry_sdk

    from crm.platform.auth import load_tenant

    # A scope of this task's own: tags set here never reach another message's events.
    with sentry_sdk.isolation_scope():
        if not spec.resolve_tenant:
            await spec.function(tenant_id, *ids)
            return
        tenant = await load_tenant(tenant_id=tenant_id)
        if tenant is None:
            log.info("%s for deleted tenant %s dropped", spec.name, tenant_id)
            return
        name_tenant(tenant)
        await spec.function(tenant, *ids)


def name_tenant(tenant: TenantRef) -> None:
    """Name the tenant in this task's log lines and Sentry events."""
    bind_log_tenant(tenant.slug)
    tag_sentry_scope(tenant.slug, tenant.edition)


def _tag_thread_scope(tenant_id: str) -> None:
    try:
        import sentry_sdk

        sentry_sdk.get_isolation_scope().set_tag("tenant_id", tenant_id)
    except Exception:  # Sentry must never turn one error into another
        log.debug("could not tag the Sentry scope", exc_info=True)


# --- the event loop actors run on -----------------------------------------------------------


class ActorLoop:
    """Runs coroutines from worker threads on one event loop — the loop that owns the
    database pool (asyncpg pools belong to one loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted (a time limit, shutdown): do not leave the work running behind us.
            future.cancel()
            raise


_actor_loop: ActorLoop | None = None


def attach_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run actors on ``loop`` from now on: the worker's own loop thread, or a test's loop
    (whose database is already connected and bound)."""
    global _actor_loop
    _actor_loop = ActorLoop(loop)


def detach_loop() -> None:
    global _actor_loop
    _actor_loop = None


def actor_loop() -> ActorLoop:
    if _actor_loop is None:
        raise RuntimeError("no event loop is attached for actors in this process (see attach_loop)")
    return _actor_loop


class LoopThread:
    """An event loop in a thread of its own, for the worker process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="actor-loop", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


# --- timers.run ---------------------------------------------------------------------------------


@actor("timers.run", resolve_tenant=False, max_retries=5)
async def run_timer(tenant_id: str, *timer_ids: int) -> None:
    """Take the queued timers (one, or a group of one tenant and kind with a batch handler)
    and run them; those found taken or finished (a message sent twice, or after a re-queue)
    are skipped."""
    from crm.platform.db import bound_engine
    from crm.platform.timers import execute, take

    pool = bound_engine().pool
    assert pool is not None
    timers = await take(pool, [int(timer_id) for timer_id in timer_ids], tenant_id)
    if not timers:
        log.info("timers %s are not queued any more; message ignored", timer_ids)
        return
    await execute(timers)
