"""Settings of the worker and scheduler processes (prefix ``CRM_``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from crm.settings import SettingsError, int_setting


@dataclass(frozen=True)
class WorkerSettings:
    processes: int = 1
    threads: int = 8
    # Prometheus metrics of the workers; 0 turns the endpoint off.
    metrics_port: int = 9191
    # The scheduler: timers claimed per round trip, and its poll when no NOTIFY comes.
    scheduler_batch: int = 500
    scheduler_poll_seconds: float = 1.0


def load_worker_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    env = os.environ if env is None else env
    poll = env.get("CRM_SCHEDULER_POLL_SECONDS", "").strip()
    try:
        poll_seconds = float(poll) if poll else 1.0
    except ValueError:
        raise SettingsError(f"CRM_SCHEDULER_POLL_SECONDS must be a number, got {poll!r}") from None
    return WorkerSettings(
        processes=int_setting(env, "CRM_WORKER_PROCESSES", 1, minimum=1),
        threads=int_setting(env, "CRM_WORKER_THREADS", 8, minimum=1),
        metrics_port=int_setting(env, "CRM_WORKER_METRICS_PORT", 9191, minimum=0),
        scheduler_batch=int_setting(env, "CRM_SCHEDULER_BATCH", 500, minimum=1),
        scheduler_poll_seconds=max(0.05, poll_seconds),
    )
