"""The web application factory: everything is assembled here, nothing at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from crm.admin_ui.assets import missing_vendor_files
from crm.admin_ui.console import SubdomainMiddleware
from crm.admin_ui.routes import console_router
from crm.bot.api import TelegramLinkController
from crm.bot.runtime import telegram_lifespan
from crm.bot.webhook import TelegramWebhookController
from crm.platform import passwords
from crm.platform.controllers import AuthController, HealthController, MeController
from crm.platform.db import connect_database, database_url
from crm.platform.editions import load_editions
from crm.platform.errors import problem_response
from crm.platform.mail import install_mail
from crm.platform.observability import configure_logging, init_sentry, request_id_middleware
from crm.platform.security import PUBLIC, BearerTokenMiddleware, enforce_declared_permission, provide_principal
from crm.platform.services import Services
from crm.platform.timers import TimerRunner
from crm.settings import Settings, load_settings
from crm.tenants.activities import controllers as activities
from crm.tenants.audit.controllers import AuditController
from crm.tenants.card import controllers as card
from crm.tenants.clients import controllers as clients
from crm.tenants.configuration import custom_fields_api
from crm.tenants.configuration.roles import RolesController
from crm.tenants.deals import controllers as deals
from crm.tenants.imports import controllers as imports
from crm.tenants.imports import export
from crm.tenants.leads import controllers as leads
from crm.tenants.leads import web_forms_api
from crm.tenants.mail.sender import MailSettingsController
from crm.tenants.mailings import controllers as mailings
from crm.tenants.notifications import controllers as notifications
from crm.tenants.search import controllers as search
from crm.tenants.tasks import controllers as tasks
from crm.tenants.users.controllers import DepartmentsController, UsersController
from crm.tenants.users.invitations import InvitationsController
from crm.tenants.users.password_reset import PasswordResetController
from crm.tenants.users.tokens import PasswordController, TokensController
from crm.tenants.users.two_factor import TwoFactorController, UserTwoFactorController


@asynccontextmanager
async def running_timers(pool: asyncpg.Pool, *, enabled: bool = True) -> AsyncIterator[None]:
    """Due timers run in the web process only when asked (tests, in-process benches);
    in production ``crm worker`` and ``crm scheduler`` run them."""
    if not enabled:
        yield
        return
    import crm.tenants.jobs  # noqa: F401 - registers the timer handlers

    runner = TimerRunner(pool)
    runner.start()
    try:
        yield
    finally:
        await runner.stop()


log = logging.getLogger(__name__)
CONSOLE_UNCOMPRESSED = r"^/(api|webhooks|schema|health|ready)(/|$)"


def create_app(
    settings: Settings | None = None,
    *,
    db_url: str | None = None,
    services: Services | None = None,
    run_timers: bool | None = None,
) -> Litestar:
    """Build the Litestar app.

    ``db_url`` overrides the configured database (``crm up``). ``services`` hands in an open
    database (tests that share one event loop and one engine with the app): Piccolo binds
    table classes to one engine per process, so a second engine must not be opened.
    ``run_timers``: run due timers in this process (a TimerRunner) instead of leaving them
    to ``crm scheduler`` + ``crm worker``; by default only with ``services`` handed in —
    the tests and the in-process benches, which have no workers.
    """
    in_process_timers = services is not None if run_timers is None else run_timers
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    init_sentry(settings)
    # Editions are validated before anything is served: a bad file stops the start.
    editions = services.editions if services else load_editions()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # Failed logins for unknown users check a dummy hash; make it before the first one.
        await asyncio.to_thread(passwords.warm_up)
        missing = missing_vendor_files()
        if missing:
            log.warning("the console's npm files are not installed (run make): %s", ", ".join(missing))
        install_mail(settings)
        if services is not None:
            app.state.services = services
            async with running_timers(services.db.pool, enabled=in_process_timers):
                yield
            return
        db = await connect_database(
            db_url or database_url(settings),
            pool_min=settings.database.pool_min,
            pool_max=settings.database.pool_max,
        )
        app.state.services = Services(settings=settings, db=db, editions=editions)
        try:
            async with running_timers(db.pool, enabled=in_process_timers):
                yield
        finally:
            await db.close()

    auth = DefineMiddleware(BearerTokenMiddleware, exclude_from_auth_key="public")
    app = Litestar(
        route_handlers=[
            console_router(),
            HealthController,
            AuthController,
            MeController,
            UsersController,
            DepartmentsController,
            InvitationsController,
            PasswordResetController,
            RolesController,
            TokensController,
            PasswordController,
            TwoFactorController,
            UserTwoFactorController,
            AuditController,
            *clients.CONTROLLERS,
            *leads.CONTROLLERS,
            *web_forms_api.CONTROLLERS,
            *deals.CONTROLLERS,
            *activities.CONTROLLERS,
            *tasks.CONTROLLERS,
            *notifications.CONTROLLERS,
            *search.CONTROLLERS,
            *imports.CONTROLLERS,
            *export.CONTROLLERS,
            *card.CONTROLLERS,
            *custom_fields_api.CONTROLLERS,
            MailSettingsController,
            *mailings.CONTROLLERS,
            TelegramLinkController,
            TelegramWebhookController,
        ],
        # The bot's hook runs after the first, which opens the services it needs.
        lifespan=[lifespan, telegram_lifespan(settings)],
        middleware=[request_id_middleware, auth],
        guards=[enforce_declared_permission],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers={Exception: problem_response},
        # Logging is configured by configure_logging() (tenant and request id on every line).
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="Relay CRM API",
            version="1",
            path="/schema",
            # The API's documentation is public.
            openapi_router=Router("/schema", route_handlers=[], include_in_schema=False, opt=PUBLIC),
            render_plugins=[JsonRenderPlugin()],
        ),
        # The console's pages and assets go gzipped (a first page load well under 150 KB);
        # the API's JSON is left as it is (its clients and benchmarks pay no compression).
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=1024, gzip_compress_level=6, exclude=CONSOLE_UNCOMPRESSED
        ),
        debug=False,
    )
    # Before routing: a company's subdomain reaches the same console pages as its path.
    app.asgi_handler = SubdomainMiddleware(app.asgi_handler, settings.web.console_domain)
    return app


def app_from_environment() -> Litestar:
    """Entry point for ASGI servers (``uvicorn --factory crm.platform.app:app_from_environment``)."""
    return create_app()
