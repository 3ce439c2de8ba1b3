"""The console's routes in one Router: CSRF checked on every form post, and errors answered
as pages (a sign-in redirect, "not found", "not allowed") instead of problem documents."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from crm.admin_ui import (
    admin_audit,
    admin_roles,
    admin_settings,
    admin_users,
    clients_pages,
    deals_pages,
    import_pages,
    mailings_pages,
    navigation,  # noqa: F401 - the menu's template globals
    tasks_pages,
    telegram_page,
)
from crm.admin_ui.assets import AssetsController
from crm.admin_ui.auth_pages import ConsoleAuthController, PasswordResetPageController
from crm.admin_ui.console import ENVIRONMENT, CsrfRefused, LoginRequired, PageNotFound, login_location, redirect
from crm.admin_ui.pages import DashboardController
from crm.admin_ui.sessions import ANONYMOUS_COOKIE, CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, csrf_matches
from crm.admin_ui.texts import Texts, locale_of
from crm.platform.errors import CrmError, ModuleNotInEdition, NotFound, problem_response
from crm.platform.services import services_of

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Every page controller of the console; areas add theirs here.
PAGE_CONTROLLERS: list[type] = [
    ConsoleAuthController,
    PasswordResetPageController,
    DashboardController,
    *admin_users.CONTROLLERS,
    *admin_roles.CONTROLLERS,
    *admin_settings.CONTROLLERS,
    *admin_audit.CONTROLLERS,
    *clients_pages.CONTROLLERS,
    *deals_pages.CONTROLLERS,
    *tasks_pages.CONTROLLERS,
    *import_pages.CONTROLLERS,
    *mailings_pages.CONTROLLERS,
    *telegram_page.CONTROLLERS,
]


async def require_csrf(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A form post must carry the token of this browser's session (or pre-sign-in cookie,
    or the signed link it was shown for)."""
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    request = connection if isinstance(connection, Request) else Request(connection.scope, connection.receive)
    given = request.headers.get(CSRF_HEADER)
    if not given and request.content_type[0] in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = str((await request.form()).get(CSRF_FIELD) or "")
    key = services_of(request.app.state).settings.secret_key.reveal()
    candidates = (
        request.cookies.get(SESSION_COOKIE),
        request.cookies.get(ANONYMOUS_COOKIE),
        request.path_params.get("token"),
    )
    if not any(csrf_matches(key, candidate, given) for candidate in candidates if candidate):
        raise CsrfRefused()


def _page(request: Request[Any, Any, Any], status: int, key: str) -> Response[str]:
    locale = getattr(request.state, "console_locale", None) or locale_of(request.headers.get("accept-language"))
    texts = Texts(locale)
    html = ENVIRONMENT.get_template("error.html").render(t=texts, message=texts(key), status=status)
    return Response(html, status_code=status, media_type="text/html", headers={"Cache-Control": "no-store"})


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, LoginRequired):
        company = str(request.path_params.get("company") or "")
        return redirect(None, request, login_location(request, company))
    if isinstance(exc, CsrfRefused):
        return _page(request, 403, "error.csrf")
    if isinstance(exc, (PageNotFound, NotFound)):
        return _page(request, 404, "error.not_found")
    if isinstance(exc, ModuleNotInEdition):
        return _page(request, 402, "error.module")
    if isinstance(exc, CrmError) and exc.status == 403:
        return _page(request, 403, "error.forbidden")
    if isinstance(exc, CrmError) and exc.status == 429:
        return _page(request, 429, "error.rate")
    return problem_response(request, exc)


def console_router() -> Router:
    return Router(
        path="/",
        route_handlers=[AssetsController, *PAGE_CONTROLLERS],
        guards=[require_csrf],
        exception_handlers={
            LoginRequired: _handle,
            CsrfRefused: _handle,
            PageNotFound: _handle,
            CrmError: _handle,
        },
        include_in_schema=False,
    )
