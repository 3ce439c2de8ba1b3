"""``/invite/{token}``: the link of the invitation e-mail. The invitee checks their name,
chooses a password, and is sent to their company's sign-in page.

The page stands outside any company's console (the signed token names the company); its
form's CSRF token is keyed by the link itself, which the console's guard accepts for a
path parameter named ``token``: only who holds the link can post the form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.admin_form_errors import form_errors
from crm.admin_ui.console import render_standalone
from crm.admin_ui.texts import Texts, locale_of
from crm.platform.auth import Origin
from crm.platform.errors import InvalidInput, TooManyRequests
from crm.platform.observability import request_id_var
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address
from crm.platform.services import services_of
from crm.tenants.users.invitations import PendingInvitation, accept_invitation, open_invitation
from crm.tenants.users.links import InvalidLink

FORM_ERRORS = {
    "name": "admin_users.error.name",
    "password:must be at least": "admin_invite.error.short",
    "password:must be at most": "admin_invite.error.long",
    "password:is too easy": "admin_invite.error.easy",
    "password:must not contain": "admin_invite.error.personal",
    "password": "admin_invite.error.easy",
}


class InvitationPageController(Controller):
    path = "/invite"
    include_in_schema = False

    @get("/{token:str}", opt=PUBLIC)
    async def page(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
        services = services_of(request.app.state)
        try:
            pending = await open_invitation(token, secret_key=services.settings.secret_key.reveal())
        except InvalidLink:
            return await _page(request, Texts(_locale(request)), token, status_code=410, invalid=True)
        return await _page(request, Texts(pending.locale), token, pending=pending, name=pending.name)

    @post("/{token:str}", opt=PUBLIC)
    async def accept(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
        services = services_of(request.app.state)
        form = await request.form()
        name = str(form.get("name") or "")
        texts = Texts(_locale(request))
        pending: PendingInvitation | None = None
        try:
            # The API's limit for accepting invitations, shared with it by address.
            await check_rate_limit(services.db.pool, f"invite:{client_address(request)}", limit=30, window_seconds=300)
            pending = await open_invitation(token, secret_key=services.settings.secret_key.reveal())
            texts = Texts(pending.locale)
            accepted = await accept_invitation(
                token,
                str(form.get("password") or ""),
                secret_key=services.settings.secret_key.reveal(),
                origin=Origin(
                    channel="console",
                    request_id=request_id_var.get(),
                    client_address=request.client.host if request.client else None,
                ),
                name=name,
            )
        except TooManyRequests:
            return await _page(
                request, texts, token, status_code=429, pending=pending, message=texts("error.rate"), name=name
            )
        except InvalidLink:
            return await _page(request, texts, token, status_code=410, invalid=True)
        except InvalidInput as problem:
            errors = form_errors(texts, problem, FORM_ERRORS)
            return await _page(request, texts, token, status_code=422, pending=pending, name=name, errors=errors)
        return Response("", status_code=303, headers={"Location": f"/{quote(accepted.tenant)}/login"})


def _locale(request: Request[Any, Any, Any]) -> str:
    return locale_of(request.headers.get("accept-language"))


async def _page(
    request: Request[Any, Any, Any],
    texts: Texts,
    token: str,
    *,
    status_code: int = 200,
    pending: PendingInvitation | None = None,
    invalid: bool = False,
    name: str = "",
    errors: dict[str, str] | None = None,
    message: str | None = None,
) -> Response[str]:
    services = services_of(request.app.state)
    company = None
    if pending is not None:
        name_of = "SELECT name FROM platform.tenants WHERE id = $1"
        company = await services.db.pool.fetchval(name_of, pending.tenant.id) or pending.tenant.slug
    return render_standalone(
        request,
        texts,
        "invite.html",
        status_code=status_code,
        token=token,
        pending=pending,
        company=company,
        invalid=invalid,
        name=name,
        errors=errors or {},
        message=message,
    )
