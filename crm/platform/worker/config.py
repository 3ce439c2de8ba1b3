"""Settings of the worker and scheduler processes (prefix ``CRM_``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from crm.settings import SettingsError


@dataclass(frozen=True)
class WorkerSettings:
    processes: int = 1
    threads: int = 8
    # Prometheus metrics of the workers; 0 turns the endpoint off.
    metrics_port: int = 9191
    # The scheduler: timers claimed per round trip, and its poll when no NOTIFY comes.
    scheduler_batch: int = 500
    scheduler_poll_seconds: float = 1.0


def _positive(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def load_worker_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    env = os.environ if env is None else env
    poll = env.get("CRM_SCHEDULER_POLL_SECONDS", "").strip()
    try:
        poll_seconds = float(poll) if poll else 1.0
    except ValueError:
        raise SettingsError(f"CRM_SCHEDULER_POLL_SECONDS must be a number, got {poll!r}") from None
    return WorkerSettings(
        processes=_positive(env, "CRM_WORKER_PROCESSES", 1),
        threads=_positive(env, "CRM_WORKER_THREADS", 8),
        metrics_port=_positive(env, "CRM_WORKER_METRICS_PORT", 9191, minimum=0),
        scheduler_batch=_positive(env, "CRM_SCHEDULER_BATCH", 500),
        scheduler_poll_seconds=max(0.05, poll_seconds),
    )
