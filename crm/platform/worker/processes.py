"""The worker and scheduler processes, and a small supervisor for their children.

``crm worker --processes 1`` runs the Dramatiq worker in this very process (a SIGKILL of
it kills the work); more processes are children of a supervisor that restarts one that
dies and stops them all on SIGTERM/SIGINT. Children watch their parent and stop when it
is gone, so a killed supervisor leaves no orphans behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from crm.platform.worker.config import WorkerSettings
from crm.settings import Settings

log = logging.getLogger(__name__)

PARENT_ENV = "CRM_SUPERVISOR_PID"
# Threads the scheduler sends messages on.
SEND_THREADS = 4
STOP_TIMEOUT_SECONDS = 30


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _watch_parent(stop: threading.Event) -> None:
    """Stop when the supervisor that started us is gone (it may have been SIGKILLed)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != int(parent):
                log.warning("the supervising process %s is gone; stopping", parent)
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# --- worker -----------------------------------------------------------------------------------


def run_worker(settings: Settings, database_url: str, worker: WorkerSettings, *, serve_metrics: bool = True) -> int:
    """Run ``worker.threads`` Dramatiq worker threads here until SIGTERM/SIGINT."""
    import dramatiq

    from crm.platform.db import connect_database
    from crm.platform.worker.actors import LoopThread, attach_loop, declare_actors, detach_loop
    from crm.platform.worker.broker import make_broker
    from crm.platform.worker.metrics import serve_metrics as start_metrics

    stop = threading.Event()
    _stop_on_signals(stop)
    _watch_parent(stop)
    _init_sentry_for_workers(settings)
    from crm.platform.mail import install_mail

    install_mail(settings)  # the transport mail.send uses (SMTP, or the outbox folder)
    from crm.bot.channel import install_telegram, uninstall_telegram

    install_telegram(settings.telegram)  # the notification channel and the bot telegram.send uses
    if serve_metrics:
        start_metrics(worker.metrics_port)
    loop = LoopThread()
    loop.start()
    # Worker threads share the pool through the loop; one connection each plus the lease renewals.
    db = loop.run(connect_database(database_url, pool_min=1, pool_max=worker.threads + 2))
    attach_loop(loop.loop)
    broker = make_broker(settings.broker.url, database_url)
    declare_actors(broker)
    dramatiq_worker = dramatiq.Worker(broker, worker_threads=worker.threads)
    dramatiq_worker.start()
    log.info("worker running: %s threads, pid %s", worker.threads, os.getpid())
    try:
        stop.wait()
    finally:
        log.info("worker stopping")
        # In-flight messages get STOP_TIMEOUT_SECONDS; one cut short is delivered again and
        # its timer claimed again when the lease runs out.
        dramatiq_worker.stop(timeout=STOP_TIMEOUT_SECONDS * 1000)
        broker.close()
        detach_loop()
        loop.run(uninstall_telegram())
        loop.run(db.close())
        loop.stop()
    return 0


def _init_sentry_for_workers(settings: Settings) -> None:
    if settings.sentry.dsn is None:
        return
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    from crm.platform.observability import init_sentry

    # Before the broker exists: the integration adds its middleware to brokers made after it.
    init_sentry(settings, extra_integrations=[DramatiqIntegration()])


def run_worker_processes(settings: Settings, worker: WorkerSettings) -> int:
    """Supervise ``worker.processes`` single-process workers; their metrics summed on one port."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="crm-worker-metrics-"))
    env = dict(os.environ)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["CRM_WORKER_METRICS_PORT"] = "0"  # the supervisor serves the sum
    command = [sys.executable, "-m", "crm", "worker", "--processes", "1", "--threads", str(worker.threads)]
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    from crm.platform.worker.metrics import serve_metrics

    serve_metrics(worker.metrics_port, multiprocess_dir=str(metrics_dir))
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        return Supervisor({f"worker-{n}": command for n in range(worker.processes)}, env).run(stop)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


# --- scheduler --------------------------------------------------------------------------------


def run_scheduler(settings: Settings, database_url: str, worker: WorkerSettings) -> int:
    """Run the scheduler here until SIGTERM/SIGINT."""
    stop = threading.Event()
    _stop_on_signals(stop)
    _watch_parent(stop)
    from crm.platform.observability import init_sentry

    init_sentry(settings)
    asyncio.run(_scheduler_main(settings, database_url, worker, stop))
    return 0


async def _scheduler_main(settings: Settings, database_url: str, worker: WorkerSettings, stop: threading.Event) -> None:
    from crm.platform.db import connect_database
    from crm.platform.worker.actors import declare_actors, send
    from crm.platform.worker.broker import make_broker
    from crm.platform.worker.scheduler import Scheduler

    db = await connect_database(database_url, pool_min=1, pool_max=2, bind=False)
    broker = await asyncio.to_thread(make_broker, settings.broker.url, database_url)
    declare_actors(broker)

    # A send is a round trip to the broker (a commit, on PostgreSQL): a burst of 1,000
    # companies' reminders is 1,000 messages, sent a few at a time instead of one by one.
    senders = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="scheduler-send")

    def enqueue(groups: Sequence[tuple[str, list[int]]]) -> None:
        # list() waits for every send and raises the first error (the claim is then undone).
        list(senders.map(lambda group: send(broker, "timers.run", group[0], *group[1]), groups))

    scheduler = Scheduler(
        db.pool, database_url, enqueue, batch=worker.scheduler_batch, poll_seconds=worker.scheduler_poll_seconds
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(
        target=lambda: (stop.wait(), loop.call_soon_threadsafe(stopping.set)), name="stop", daemon=True
    ).start()
    log.info("scheduler waiting for its lock (pid %s)", os.getpid())
    try:
        await scheduler.run(stopping)
    finally:
        senders.shutdown()
        await asyncio.to_thread(broker.close)
        await db.close()


# --- supervisor -------------------------------------------------------------------------------


class Supervisor:
    """Keeps child processes running until ``stop``; then SIGTERM, wait, SIGKILL."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = {**env, PARENT_ENV: str(os.getpid())}
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        # A session of their own: a Ctrl-C in the terminal reaches the supervisor only, which
        # stops the children in order (instead of seeing them exit and restarting them).
        self.children[name] = subprocess.Popen(  # noqa: S603 - our own commands, no shell
            self.commands[name], env=self.env, start_new_session=True
        )

    def watch(self, stop: threading.Event) -> None:
        """Restart a child that exits while we are not stopping (at most once a second)."""
        while not stop.wait(1.0):
            for name, child in list(self.children.items()):
                if child.poll() is not None:
                    log.warning("%s (pid %s) exited with %s; starting it again", name, child.pid, child.returncode)
                    self._spawn(name)

    def run(self, stop: threading.Event) -> int:
        self.start()
        try:
            self.watch(stop)
        finally:
            self.terminate()
        return 0

    def terminate(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS + 5
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %s) did not stop; killing it", name, child.pid)
                child.kill()
                child.wait()
