"""Signing in and out of the console, and the forgotten-password pages.

Sign-in checks the password (and the authenticator code when the user turned it on) with the
API's own ``issue_token``: the same lockout with back-off after repeated failures, the same
audit rows (channel ``console``), and the per-address rate limit of the token endpoint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.console import Console, open_console, redirect, render, render_standalone
from crm.admin_ui.sessions import SESSION_COOKIE, SESSION_DAYS, SESSION_NAME, clear_cookie, set_cookie
from crm.admin_ui.texts import Texts, locale_of
from crm.platform.auth import Origin, issue_token, revoke_token
from crm.platform.errors import CrmError, Forbidden, InvalidInput, TooManyRequests, TwoFactorRequired, Unauthorized
from crm.platform.observability import request_id_var
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address
from crm.platform.services import services_of
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.users.password_reset import confirm_password_reset, request_password_reset, reset_rate_key
from crm.tenants.users.tables import AccessToken


def safe_next(console: Console, wanted: str | None) -> str:
    """Where to go after signing in: a page of this company's console, never elsewhere."""
    home = console.url("/")
    if not wanted or not wanted.startswith("/") or wanted.startswith("//") or "\\" in wanted:
        return home
    if console.base and not (wanted == console.base or wanted.startswith(console.base + "/")):
        return home
    return wanted


class ConsoleAuthController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get("/login", opt=PUBLIC)
    async def login_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company, signed_in=False)
        if console.principal is not None:
            return redirect(console, request, safe_next(console, request.query_params.get("next")))
        notice = None
        if request.query_params.get("signed_out"):
            notice = console.texts("login.signed_out")
        elif request.query_params.get("reset"):
            notice = console.texts("reset.done")
        return render(
            console,
            "login.html",
            notice=notice,
            error=None,
            email="",
            ask_code=False,
            next=request.query_params.get("next") or "",
        )

    @post("/login", opt=PUBLIC)
    async def login(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company, signed_in=False)
        form = await request.form()
        email = str(form.get("email") or "").strip()
        wanted = str(form.get("next") or "")
        services = console.services
        error, ask_code, status = None, False, 200
        try:
            await check_rate_limit(
                services.db.pool,
                f"login:{client_address(request)}",
                limit=services.settings.login_rate_limit,
                window_seconds=300,
            )
            token = await issue_token(
                services.db,
                tenant_slug=console.tenant.slug,
                email=email,
                password=str(form.get("password") or ""),
                totp_code=str(form.get("totp_code") or "").strip() or None,
                name=SESSION_NAME,
                secret_key=services.settings.secret_key.reveal(),
                origin=console.origin(),
                expires_in=timedelta(days=SESSION_DAYS),
            )
        except TwoFactorRequired:
            error, ask_code, status = console.texts("login.totp_required"), True, 401
        except TooManyRequests as refused:
            seconds = int(refused.extra.get("retry_after") or 60)
            error, status = console.texts("login.locked", seconds=seconds), 429
        except Forbidden:
            error, status = console.texts("login.inactive"), 403
        except Unauthorized:
            error, status = console.texts("login.failed"), 401
        else:
            response = redirect(console, request, safe_next(console, wanted))
            set_cookie(response, request, SESSION_COOKIE, token, path=console.base or "/", max_age=SESSION_DAYS * 86400)
            return response
        return render(
            console,
            "login.html",
            status_code=status,
            notice=None,
            error=error,
            email=email,
            ask_code=ask_code,
            next=wanted,
        )

    @post("/logout", opt=PUBLIC)
    async def logout(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company, signed_in=False)
        if console.principal is not None:
            await revoke_token(console.services.db, console.principal, origin=console.origin())
        response = redirect(console, request, console.url("/login?signed_out=1"))
        clear_cookie(response, SESSION_COOKIE, path=console.base or "/")
        return response

    @post("/logout-everywhere", opt=PUBLIC)
    async def logout_everywhere(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        user = console.user
        async with tenant_scope(console.tenant):
            revoked = (
                await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)})
                .where(AccessToken.user_id == user.user_id, AccessToken.revoked_at.is_null())
                .returning(AccessToken.id)
            )
            await record_audit(
                console.origin().actor("user", user.email, user.user_id),
                "auth.sessions_revoked",
                entity="user",
                entity_id=user.user_id,
                changes={"tokens": (None, len(revoked))},
            )
        response = redirect(console, request, console.url("/login?signed_out=1"))
        clear_cookie(response, SESSION_COOKIE, path=console.base or "/")
        return response

    @get("/forgot", opt=PUBLIC)
    async def forgot_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company, signed_in=False)
        return render(console, "forgot.html", sent=False, error=None)

    @post("/forgot", opt=PUBLIC)
    async def forgot(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company, signed_in=False)
        form = await request.form()
        try:
            await check_rate_limit(
                console.services.db.pool, reset_rate_key(client_address(request)), limit=10, window_seconds=3600
            )
        except TooManyRequests:
            return render(console, "forgot.html", status_code=429, sent=False, error=console.texts("error.rate"))
        await request_password_reset(
            console.services, console.tenant.slug, str(form.get("email") or ""), console.origin()
        )
        # The same answer whether or not the account exists.
        return render(console, "forgot.html", sent=True, error=None)


class PasswordResetPageController(Controller):
    """``/reset/{token}``: the link of the reset e-mail (the token names the company)."""

    path = "/reset"
    include_in_schema = False

    @get("/{token:str}", opt=PUBLIC)
    async def page(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
        texts = Texts(locale_of(request.headers.get("accept-language")))
        return render_standalone(request, texts, "reset.html", token=token, error=None)

    @post("/{token:str}", opt=PUBLIC)
    async def confirm(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
        texts = Texts(locale_of(request.headers.get("accept-language")))
        form = await request.form()
        services = services_of(request.app.state)
        origin = Origin(
            channel="console",
            request_id=request_id_var.get(),
            client_address=request.client.host if request.client else None,
        )
        try:
            await check_rate_limit(
                services.db.pool, reset_rate_key(client_address(request)), limit=10, window_seconds=3600
            )
            tenant = await confirm_password_reset(services, token, str(form.get("password") or ""), origin)
        except InvalidInput as problem:
            details = "; ".join(error.detail for error in problem.errors) or texts("reset.bad_link")
            field_names = {error.field for error in problem.errors}
            message = details if "password" in field_names else texts("reset.bad_link")
            return render_standalone(request, texts, "reset.html", status_code=422, token=token, error=message)
        except CrmError:
            return render_standalone(
                request, texts, "reset.html", status_code=400, token=token, error=texts("reset.bad_link")
            )
        return Response("", status_code=303, headers={"Location": f"/{quote(tenant.slug)}/login?reset=1"})
