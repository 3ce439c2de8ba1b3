"""The ``crm`` command: run the product and administer tenants, migrations and editions."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from crm.settings import Settings, SettingsError, load_settings

Command = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        result: int = args.run(args)
        return result
    except SettingsError as exc:
        print(f"crm: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="Relay CRM")
    commands = parser.add_subparsers(title="commands")

    up = commands.add_parser("up", help="run everything: database, migrations, demo tenant, web app")
    up.set_defaults(run=_lazy("crm.platform.runner", "command_up"))
    serve = commands.add_parser("serve", help="run only the web app")
    serve.set_defaults(run=_lazy("crm.platform.runner", "command_serve"))
    worker = commands.add_parser("worker", help="run Dramatiq workers: the background jobs")
    worker.add_argument("--processes", type=int, default=None, help="worker processes (CRM_WORKER_PROCESSES, 1)")
    worker.add_argument("--threads", type=int, default=None, help="threads per process (CRM_WORKER_THREADS, 8)")
    worker.set_defaults(run=_lazy("crm.platform.worker.commands", "command_worker"))
    scheduler = commands.add_parser("scheduler", help="turn due timers into jobs (one active, others wait)")
    scheduler.set_defaults(run=_lazy("crm.platform.worker.commands", "command_scheduler"))
    bot = commands.add_parser("bot", help="run the Telegram bot by long polling (production uses the webhook)")
    bot.set_defaults(run=_lazy("crm.bot.polling", "command_bot"))
    jobs = commands.add_parser("jobs", help="background jobs that failed")
    job_commands = jobs.add_subparsers(title="jobs commands", required=True)
    failed = job_commands.add_parser("failed", help="list failed jobs, newest first")
    failed.add_argument("--json", action="store_true")
    failed.add_argument("--limit", type=int, default=100)
    failed.set_defaults(run=_lazy("crm.platform.worker.commands", "command_jobs_failed"))
    retry = job_commands.add_parser("retry", help="queue failed jobs again")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--all", action="store_true", help="every failed job")
    retry.set_defaults(run=_lazy("crm.platform.worker.commands", "command_jobs_retry"))

    migrate = commands.add_parser("migrate", help="migrate the platform schema and every tenant schema")
    migrate.add_argument("--check", action="store_true", help="exit 1 and list the tenants that are behind")
    migrate.add_argument("--tenant", metavar="SLUG", help="migrate only this tenant")
    migrate.add_argument("--jobs", type=int, default=None, help="tenants migrated in parallel")
    migrate.set_defaults(run=_lazy("crm.platform.commands", "command_migrate"))

    editions = commands.add_parser("editions", help="list or check edition files")
    edition_commands = editions.add_subparsers(title="editions commands", required=True)
    listing = edition_commands.add_parser("list", help="the editions this build ships")
    listing.set_defaults(run=_lazy("crm.platform.commands", "command_editions_list"))
    check = edition_commands.add_parser("check", help="validate an edition file")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_lazy("crm.platform.commands", "command_editions_check"))

    tenants = commands.add_parser("tenants", help="create, list and manage tenants")
    tenant_commands = tenants.add_subparsers(title="tenants commands", required=True)
    create = tenant_commands.add_parser("create", help="sign a company up")
    for name in ("company", "slug", "edition", "admin-email", "admin-name"):
        create.add_argument(f"--{name}", required=True)
    create.add_argument("--admin-password", help="omit to read it from the CRM_ADMIN_PASSWORD variable or a prompt")
    create.add_argument("--locale", default="en")
    create.add_argument("--timezone", default="UTC")
    create.set_defaults(run=_lazy("crm.platform.commands", "command_tenants_create"))
    tenant_list = tenant_commands.add_parser("list", help="all tenants")
    tenant_list.add_argument("--json", action="store_true")
    tenant_list.set_defaults(run=_lazy("crm.platform.commands", "command_tenants_list"))
    for name, help_text in (
        ("show", "one tenant"),
        ("suspend", "refuse the tenant's logins and tokens"),
        ("resume", "undo suspend"),
    ):
        sub = tenant_commands.add_parser(name, help=help_text)
        sub.add_argument("slug")
        sub.set_defaults(run=_lazy("crm.platform.commands", f"command_tenants_{name}"))
    remove = tenant_commands.add_parser("delete", help="mark a tenant deleted (--purge drops its data)")
    remove.add_argument("slug")
    remove.add_argument("--purge", action="store_true", help="drop the schema and every row of the tenant")
    remove.set_defaults(run=_lazy("crm.platform.commands", "command_tenants_delete"))
    audit = commands.add_parser("audit", help="the audit log of a tenant")
    audit_commands = audit.add_subparsers(title="audit commands", required=True)
    verify = audit_commands.add_parser("verify", help="recompute the hash chain; exit 1 at the first broken row")
    verify.add_argument("slug")
    verify.set_defaults(run=_lazy("crm.platform.commands", "command_audit_verify"))
    mail = commands.add_parser("mail", help="outgoing mail")
    mail_commands = mail.add_subparsers(title="mail commands", required=True)
    outbox = mail_commands.add_parser("outbox", help="messages written to the outbox folder (no CRM_SMTP_URL)")
    outbox.add_argument("--show", metavar="N", type=int, help="print the whole N-th message of the list")
    outbox.add_argument("--json", action="store_true")
    outbox.set_defaults(run=_lazy("crm.platform.mail", "command_mail_outbox"))
    return parser


def _lazy(module: str, name: str) -> Command:
    """Import a command's module only when it runs: ``crm --help`` stays fast."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        command: Command = getattr(importlib.import_module(module), name)
        return command(args)

    return run


def run_async(work: Callable[[Settings], Coroutine[Any, Any, int]]) -> int:
    """Run an async command body with the settings of this environment."""
    settings = load_settings()
    return asyncio.run(work(settings))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))
