"""``crm worker``, ``crm scheduler`` and ``crm jobs failed|retry``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from crm.cli import print_json
from crm.platform.db import database_url
from crm.platform.observability import configure_logging
from crm.platform.worker.config import load_worker_settings
from crm.settings import load_settings


def command_worker(args: argparse.Namespace) -> int:
    from crm.platform.worker.processes import run_worker, run_worker_processes

    settings = load_settings()
    configure_logging(settings.log_level)
    worker = load_worker_settings()
    worker = replace(worker, processes=args.processes or worker.processes, threads=args.threads or worker.threads)
    if worker.processes > 1:
        return run_worker_processes(settings, worker)
    return run_worker(settings, database_url(settings), worker)


def command_scheduler(args: argparse.Namespace) -> int:
    from crm.platform.worker.processes import run_scheduler

    settings = load_settings()
    configure_logging(settings.log_level)
    return run_scheduler(settings, database_url(settings), load_worker_settings())


def command_jobs_failed(args: argparse.Namespace) -> int:
    from crm.platform.commands import _with_services
    from crm.platform.services import Services
    from crm.platform.timers import failed_timers

    async def work(services: Services) -> int:
        rows = await failed_timers(services.db.pool, limit=args.limit)
        if args.json:
            print_json(rows)
            return 0
        for row in rows:
            error = (row["last_error"] or "").splitlines()[0][:120] if row["last_error"] else ""
            print(f"{row['id']:>8}  {row['kind']:20} {row['tenant']:24} attempts {row['attempts']}  {error}")
        print(f"{len(rows)} failed job(s)", file=sys.stderr)
        return 0

    return _with_services(work)


def command_jobs_retry(args: argparse.Namespace) -> int:
    from crm.platform.commands import _with_services
    from crm.platform.services import Services
    from crm.platform.timers import retry_failed

    if not args.all and not args.ids:
        print("crm jobs retry: give job ids or --all", file=sys.stderr)
        return 2

    async def work(services: Services) -> int:
        retried = await retry_failed(services.db.pool, None if args.all else args.ids)
        missing = sorted(set(args.ids or []) - set(retried))
        for timer_id in retried:
            print(f"job {timer_id} queued again")
        for timer_id in missing:
            print(f"crm: job {timer_id} is not a failed job", file=sys.stderr)
        return 1 if missing else 0

    return _with_services(work)
