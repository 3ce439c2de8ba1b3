"""``crm up`` and ``crm serve``: start the database (embedded by default), migrate, serve;
``crm up`` also runs a worker and the scheduler as child processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import uvicorn

from crm.platform.app import create_app
from crm.platform.db import database_url
from crm.platform.migrate import MigrationError
from crm.platform.observability import configure_logging
from crm.platform.services import Services, open_services
from crm.settings import Settings, load_settings

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.relay-crm.dev"


@dataclass(frozen=True)
class DemoLogin:
    tenant: str
    email: str
    password: str


def command_up(args: argparse.Namespace) -> int:
    _stop_cleanly_on_sigterm()
    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    # This process and the ones it starts (worker, scheduler, bot) use the server found now.
    os.environ["CRM_DATABASE_URL"] = url
    settings = replace(settings, database=replace(settings.database, url=url))
    try:
        login = asyncio.run(_prepare(settings))
    except MigrationError as exc:
        print(f"crm up: {exc}; see the messages above, fix them and run crm up again", file=sys.stderr)
        return 1
    print(
        f"\nRelay CRM is starting at {settings.web.public_url}\n"
        f"  API documentation: {settings.web.public_url}/schema/openapi.json\n"
        f"  demo company: {login.tenant}   e-mail: {login.email}   password: {login.password}\n"
        f"  data: {settings.data_dir}   (Ctrl-C stops everything; data is kept)\n",
        flush=True,
    )
    # The background jobs run in a worker and a scheduler process beside the web app.
    from crm.platform.worker.processes import Supervisor

    command = [sys.executable, "-m", "crm"]
    children = {"worker": [*command, "worker"], "scheduler": [*command, "scheduler"]}
    if settings.telegram.mode == "polling":  # with a webhook secret the web app takes the updates
        children["bot"] = [*command, "bot"]
    supervisor = Supervisor(children, dict(os.environ))
    stop = threading.Event()
    background = threading.Thread(target=supervisor.run, args=(stop,), name="supervisor")
    background.start()
    try:
        return _serve(settings, url)
    finally:
        # Before this process exits (and with it the embedded server, if it started one).
        stop.set()
        background.join()


def command_serve(args: argparse.Namespace) -> int:
    _stop_cleanly_on_sigterm()
    settings = load_settings()
    return _serve(settings, database_url(settings))


def _serve(settings: Settings, url: str) -> int:
    app = create_app(settings, db_url=url)
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.web.trusted_proxies,
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass
    return 0


def _stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM a normal interpreter exit so exit hooks run: the embedded server is
    stopped by its own hook. uvicorn handles the signal itself while serving (graceful
    shutdown), then re-raises it with this handler restored."""
    signal.signal(signal.SIGTERM, _exit_cleanly)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


async def _prepare(settings: Settings) -> DemoLogin:
    from crm.platform.commands import migrate_everything

    services = await open_services(settings, pool_max=4)
    try:
        if await migrate_everything(services, jobs=settings.migrate_jobs, quiet=True) != 0:
            raise MigrationError("some tenants could not be migrated")
        return await ensure_demo_tenant(services, settings.data_dir)
    finally:
        await services.db.close()


async def ensure_demo_tenant(services: Services, data_dir: Path) -> DemoLogin:
    """Create the demo tenant on first start; later starts read its login back."""
    from crm.platform.signup import SignupRequest, provision_tenant
    from crm.platform.tables import Tenant
    from crm.tenants.clients.demo import seed_demo_clients

    login_file = data_dir / "demo-login.json"
    # Any status counts: a deleted demo stays deleted rather than being re-created.
    if await Tenant.exists().where(Tenant.slug == DEMO_SLUG):
        return _read_demo_login(login_file)
    login = DemoLogin(DEMO_SLUG, DEMO_EMAIL, "demo-" + secrets.token_urlsafe(9))
    # Written before the tenant exists, so a crash in between never loses the password.
    _write_demo_login(login_file, login)
    await provision_tenant(
        services.db,
        services.editions,
        SignupRequest(
            company="Demo Company",
            slug=DEMO_SLUG,
            edition="business",
            admin_email=login.email,
            admin_password=login.password,
            admin_name="Demo Admin",
            locale="en",
            timezone="Europe/Moscow",
        ),
        seed=seed_demo_clients,
    )
    return login


def _read_demo_login(path: Path) -> DemoLogin:
    if not path.exists():
        return DemoLogin(DEMO_SLUG, DEMO_EMAIL, "(not stored in this data directory)")
    return DemoLogin(**json.loads(path.read_text()))


def _write_demo_login(path: Path, login: DemoLogin) -> None:
    """Only the owner of the data directory can read the demo password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(login.__dict__, handle)
