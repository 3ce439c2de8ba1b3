"""Prometheus metrics of the workers: messages by actor and outcome, timers by kind and
outcome, and how late timers start after their due time. No tenant labels: ten thousand
tenants would make ten thousand series per metric.

The metrics are made on first use (``prometheus_client`` picks its multi-process mode from
``PROMETHEUS_MULTIPROC_DIR`` when it is imported: ``crm worker --processes N`` sets it for
its children and serves their sum)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

log = logging.getLogger(__name__)

_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


@dataclass
class _Metrics:
    messages: Any
    message_seconds: Any
    timers: Any
    timer_seconds: Any
    timer_lateness: Any


_metrics: _Metrics | None = None
_lock = threading.Lock()


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                from prometheus_client import Counter, Histogram

                _metrics = _Metrics(
                    messages=Counter("crm_worker_messages", "Dramatiq messages processed", ["actor", "outcome"]),
                    message_seconds=Histogram("crm_worker_message_seconds", "Time to process a message", ["actor"]),
                    timers=Counter("crm_timers_run", "Timers run, by kind and outcome", ["kind", "outcome"]),
                    timer_seconds=Histogram("crm_timer_run_seconds", "Time a timer's handler took", ["kind"]),
                    timer_lateness=Histogram(
                        "crm_timer_lateness_seconds",
                        "From a timer's due time to its handler's start",
                        ["kind"],
                        buckets=_LATENESS_BUCKETS,
                    ),
                )
    return _metrics


def timer_started(kind: str, due_at: datetime) -> None:
    lateness = (datetime.now(UTC) - due_at).total_seconds()
    _get().timer_lateness.labels(kind).observe(max(0.0, lateness))


def timer_finished(kind: str, outcome: str, seconds: float) -> None:
    metrics = _get()
    metrics.timers.labels(kind, outcome).inc()
    metrics.timer_seconds.labels(kind).observe(seconds)


class MessageMetrics(dramatiq.Middleware):
    """Counts and times every message a worker processes."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = self._started.pop(message.message_id, None)
        metrics = _get()
        metrics.messages.labels(message.actor_name, "failed" if exception else "done").inc()
        if started is not None:
            metrics.message_seconds.labels(message.actor_name).observe(time.perf_counter() - started)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._started.pop(message.message_id, None)
        _get().messages.labels(message.actor_name, "skipped").inc()


def serve_metrics(port: int, *, multiprocess_dir: str | None = None) -> bool:
    """Serve ``/metrics`` on ``port`` (all addresses; 0 serves nothing). With
    ``multiprocess_dir``, the sum of the processes writing there. A port in use is logged,
    not fatal: metrics are not worth a worker that does not start."""
    if port == 0:
        return False
    from prometheus_client import CollectorRegistry, start_http_server

    registry = None
    if multiprocess_dir is not None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    try:
        if registry is None:
            start_http_server(port)
        else:
            start_http_server(port, registry=registry)
    except OSError as error:
        log.warning("worker metrics not served on port %s: %s", port, error)
        return False
    log.info("worker metrics at http://0.0.0.0:%s/metrics (pid %s)", port, os.getpid())
    return True
