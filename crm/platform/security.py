"""Authentication at the edge and the guards later APIs declare (module gates)."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Guard

from crm.platform.auth import Origin, Principal, authenticate
from crm.platform.editions import ACTIONS, ENTITIES, KNOWN_MODULES, Editions, shipped_editions
from crm.platform.errors import Forbidden, ModuleNotInEdition, Unauthorized
from crm.platform.observability import bind_log_tenant, request_id_var, tag_sentry_scope
from crm.platform.ratelimit import raise_rate_limited
from crm.platform.services import services_of

PUBLIC = {"public": True}
"""Route ``opt`` for routes anyone may call (signup, login, health)."""

AUTHENTICATED = {"permission": "authenticated"}
"""Route ``opt`` for routes any signed-in user may call about themselves (``/me``)."""


def permission(entity: str, action: str) -> dict[str, str]:
    """Route ``opt`` naming the right a route needs: the role must grant a scope above ``none``.

    Every route declares this, :data:`AUTHENTICATED` or :data:`PUBLIC`; a route that
    declares nothing is refused (and a test fails on it)."""
    if entity not in ENTITIES or action not in ACTIONS:
        raise ValueError(f"unknown permission {entity}.{action}")
    return {"permission": f"{entity}.{action}"}


async def enforce_declared_permission(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-wide guard: apply what the route declared; refuse what declares nothing.
    (Guards here are ``async``: Litestar runs a plain function guard in a worker thread,
    a thread hop on every request.)"""
    if handler.opt.get("public") or connection.scope.get("method") == "OPTIONS":
        # OPTIONS handlers are Litestar's own (they answer Allow and read nothing).
        return
    declared = handler.opt.get("permission")
    if declared is None:
        raise Forbidden("This endpoint declares no permission and is closed.")
    if declared == "authenticated":
        return
    principal = connection.user
    if not isinstance(principal, Principal):
        raise Unauthorized()
    entity, _, action = declared.partition(".")
    if principal.scope(entity, action) == "none":
        raise Forbidden(f"Your role does not allow {action} on {entity}.", permission=declared)


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Resolve ``Authorization: Bearer crm_…`` to a :class:`Principal` on every non-public route."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
        services = services_of(connection.app.state)
        authenticated = await authenticate(services.db, token.strip())
        principal = authenticated.principal
        bind_log_tenant(principal.tenant.slug)
        tag_sentry_scope(principal.tenant.slug, principal.tenant.edition)
        # Each token has its own budget, set by the edition (None: unlimited); the hit was
        # counted by the authentication's own statement.
        per_minute = services.editions[principal.tenant.edition].limits.api_requests_per_minute
        if per_minute is not None and authenticated.hits_this_minute > per_minute:
            raise_rate_limited(authenticated.seconds_left_in_minute)
        return AuthenticationResult(user=principal, auth=token)


def provide_principal(request: ASGIConnection[Any, Principal, Any, Any]) -> Principal:
    principal = request.user
    assert isinstance(principal, Principal)
    return principal


def ensure_module(edition_key: str, module: str, editions: Editions | None = None) -> None:
    """Raise 402 naming the editions that include ``module`` unless ``edition_key``'s does.
    Service functions call it for modules that gate part of an endpoint (custom fields)."""
    editions = editions or shipped_editions()
    edition = editions[edition_key]
    if edition.has_module(module):
        return
    available = editions.with_module(module)
    raise ModuleNotInEdition(
        f"The {module!r} module is not part of the {edition.key!r} edition"
        + (f"; it is included in: {', '.join(available)}." if available else "."),
        module=module,
        edition=edition.key,
        available_in=available,
    )


def requires_module(module: str) -> Guard:
    """Guard: the caller's edition must include ``module``, else 402 naming the editions that do."""
    if module not in KNOWN_MODULES:
        raise ValueError(f"unknown module {module!r}; known: {', '.join(KNOWN_MODULES)}")

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.user
        if not isinstance(principal, Principal):
            raise Unauthorized()
        ensure_module(principal.tenant.edition, module, services_of(connection.app.state).editions)

    guard.__name__ = f"requires_module_{module}"
    return guard


def origin_of(request: ASGIConnection[Any, Any, Any, Any]) -> Origin:
    """Where this API request comes from, for the audit log."""
    return Origin(
        channel="api",
        request_id=request_id_var.get(),
        client_address=request.client.host if request.client else None,
    )


def client_address(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address for rate limits; IPv6 clients are keyed by their /64 network,
    which one host usually controls whole. Behind proxies listed in CRM_TRUSTED_PROXIES,
    uvicorn has already put the forwarded address here."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host
