"""Admin pages for users: the list (live search, filters), inviting someone, and one
user's page (roles and department, deactivate/reactivate, a password reset link, resending
a pending invitation, resetting two-factor login, their sessions and API tokens).

Every read and change goes through the services the API uses (crm/tenants/users), inside
the company's tenant scope with the signed-in user as the principal, so a role sees and
changes here exactly what the API would let it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath

from crm.admin_ui import admin_texts  # noqa: F401 - the admin pages' words
from crm.admin_ui.admin_departments import DepartmentPagesController
from crm.admin_ui.admin_form_errors import form_errors
from crm.admin_ui.console import Console, open_console, redirect, render
from crm.admin_ui.invite_page import InvitationPageController
from crm.admin_ui.navigation import register_page
from crm.platform.errors import Conflict, Forbidden, InvalidInput, LimitReached
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, page_of
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.configuration.roles import role_rows
from crm.tenants.tasks.reads import zone_of
from crm.tenants.users.departments import department_tree
from crm.tenants.users.directory import department_choices, role_choices, user_facts
from crm.tenants.users.invitations import INVITATION_DAYS, InvitationCreate, invite_user, resend_invitation
from crm.tenants.users.password_reset import send_password_reset
from crm.tenants.users.reads import USER_LIST, UserFilters, may_act_on_user, user_in_scope, user_page, user_read
from crm.tenants.users.services import set_user_active, update_user
from crm.tenants.users.tokens import revoke_token_of, tokens_of
from crm.tenants.users.two_factor import reset_two_factor, two_factor_enabled

NOTICES = {
    "saved": "common.saved",
    "invited": "admin_users.notice.invited",
    "deactivated": "admin_users.notice.deactivated",
    "reactivated": "admin_users.notice.reactivated",
    "reset_sent": "admin_users.notice.reset_sent",
    "revoked": "admin_users.notice.revoked",
    "invitation_resent": "admin_users.notice.invitation_resent",
    "two_factor_reset": "admin_users.notice.two_factor_reset",
}
USER_FORM_ERRORS = {
    "roles": "admin_users.error.roles",
    "role": "admin_users.error.roles",
    "department_id": "admin_users.error.department",
    "user_id": "admin_users.error.self",
}
INVITE_FORM_ERRORS = {
    "email:is already": "admin_users.error.email_taken",
    "email": "admin_users.error.email",
    "name": "admin_users.error.name",
    "role": "admin_users.error.roles",
    "department_id": "admin_users.error.department",
    "locale": "admin_users.error.field",
}


def _optional_id(value: Any) -> int | None:
    """A form's id field: empty means none; anything else must be an id (else 0, which no
    row has, so the service reports the field)."""
    text = str(value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() and int(text) <= MAX_ID else 0


def _notice(console: Console) -> str | None:
    key = NOTICES.get(str(console.request.query_params.get("done") or ""))
    return console.texts(key) if key else None


class UserPagesController(Controller):
    path = "/{company:str}/admin/users"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def list_users(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        params = request.query_params
        status = str(params.get("status") or "")
        filters = UserFilters(
            q=str(params.get("q") or "")[:200] or None,
            role=str(params.get("role") or "")[:50] or None,
            department_id=_optional_id(params.get("department_id")),
            is_active={"active": True, "inactive": False}.get(status),
        )
        ordering = USER_LIST.ordering("name")
        cursor = str(params.get("cursor") or "") or None
        may_see_departments = console.may("departments", "read")
        async with tenant_scope(console.tenant):
            rows, next_cursor = page_of(
                await user_page(console.user, filters, ordering, cursor, DEFAULT_LIMIT), ordering, DEFAULT_LIMIT
            )
            facts = await user_facts(
                console.tenant.id, [row["id"] for row in rows], with_telegram=console.has_module("bot")
            )
            departments = await department_tree(console.user) if may_see_departments else []
            roles = await _role_names(console)
        context: dict[str, Any] = {
            "users": [user_read(row) for row in rows],
            "facts": facts,
            "departments": departments,
            "department_names": {node.id: node.name for node in departments},
            "role_names": roles,
            "filters": filters,
            "status": status,
            "next_cursor": next_cursor,
            "zone": zone_of(console.user.timezone),
            "notice": _notice(console),
        }
        if request.headers.get("hx-target") == "users-results":
            return render(console, "admin_users_results.html", **context)
        return render(console, "admin_users.html", **context)

    @get("/invite", opt=PUBLIC)
    async def invite_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        if not console.may("users", "create"):
            raise Forbidden("Your role does not allow inviting users.", permission="users.create")
        form = {"email": "", "name": "", "role": "", "department_id": "", "locale": console.user.locale}
        return await self._invite_form(console, form, {})

    @post("/invite", opt=PUBLIC)
    async def invite(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        submitted = await request.form()
        form = {key: str(submitted.get(key) or "") for key in ("email", "name", "role", "department_id", "locale")}
        form["locale"] = form["locale"] or console.user.locale
        settings = console.services.settings
        try:
            async with tenant_scope(console.tenant):
                created = await invite_user(
                    console.user,
                    InvitationCreate(
                        email=form["email"],
                        name=form["name"],
                        role=form["role"],
                        department_id=_optional_id(form["department_id"]),
                        locale=form["locale"],
                    ),
                    secret_key=settings.secret_key.reveal(),
                    public_url=settings.web.public_url,
                    origin=console.origin(),
                )
        except (InvalidInput, Conflict) as problem:
            return await self._invite_form(
                console, form, form_errors(console.texts, problem, INVITE_FORM_ERRORS), status_code=problem.status
            )
        except LimitReached as refused:
            message = console.texts("admin_users.error.limit", limit=refused.extra.get("limit"))
            return await self._invite_form(console, form, {}, status_code=402, message=message)
        return redirect(console, request, console.url(f"/admin/users/{created.user_id}?done=invited"))

    @staticmethod
    async def _invite_form(
        console: Console,
        form: dict[str, str],
        errors: dict[str, str],
        *,
        status_code: int = 200,
        message: str | None = None,
    ) -> Response[str]:
        async with tenant_scope(console.tenant):
            roles = await role_choices(console.user)
            departments = await department_choices(console.user)
        return render(
            console,
            "admin_users_invite.html",
            status_code=status_code,
            form=form,
            errors=errors,
            message=message,
            roles=roles,
            departments=departments,
        )

    @get("/{user_id:int}", opt=PUBLIC)
    async def user_page(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        return await self._user(console, user_id, notice=_notice(console))

    @post("/{user_id:int}", opt=PUBLIC)
    async def update(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        submitted = await request.form()
        main = str(submitted.get("role") or "")
        further = [role for role in _all(submitted, "extra_roles") if role and role != main]
        changes = {"roles": [main, *further], "department_id": _optional_id(submitted.get("department_id"))}
        try:
            async with tenant_scope(console.tenant):
                await update_user(console.user, user_id, changes, origin=console.origin())
        except InvalidInput as problem:
            errors = form_errors(console.texts, problem, USER_FORM_ERRORS)
            return await self._user(console, user_id, errors=errors, status_code=422, form=changes)
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done=saved"))

    @post("/{user_id:int}/deactivate", opt=PUBLIC)
    async def deactivate(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        return await self._set_active(request, company, user_id, active=False)

    @post("/{user_id:int}/reactivate", opt=PUBLIC)
    async def reactivate(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        return await self._set_active(request, company, user_id, active=True)

    async def _set_active(
        self, request: Request[Any, Any, Any], company: str, user_id: int, *, active: bool
    ) -> Response[str]:
        console = await open_console(request, company)
        try:
            async with tenant_scope(console.tenant):
                await set_user_active(console.user, user_id, active, origin=console.origin())
        except InvalidInput as problem:
            errors = form_errors(console.texts, problem, USER_FORM_ERRORS)
            return await self._user(console, user_id, errors=errors, status_code=422)
        except LimitReached as refused:
            message = console.texts("admin_users.error.limit", limit=refused.extra.get("limit"))
            return await self._user(console, user_id, status_code=402, message=message)
        done = "reactivated" if active else "deactivated"
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done={done}"))

    @post("/{user_id:int}/password-reset", opt=PUBLIC)
    async def password_reset(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        try:
            async with tenant_scope(console.tenant):
                await send_password_reset(console.services, console.user, user_id, origin=console.origin())
        except InvalidInput:
            message = console.texts("admin_users.error.reset_inactive")
            return await self._user(console, user_id, status_code=422, message=message)
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done=reset_sent"))

    @post("/{user_id:int}/invitation/resend", opt=PUBLIC)
    async def resend_invite(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        settings = console.services.settings
        try:
            async with tenant_scope(console.tenant):
                await resend_invitation(
                    console.user,
                    user_id,
                    secret_key=settings.secret_key.reveal(),
                    public_url=settings.web.public_url,
                    origin=console.origin(),
                )
        except Conflict:
            # Accepted meanwhile (or never invited): the page shows the user as they are now.
            message = console.texts("admin_users.error.not_invited")
            return await self._user(console, user_id, status_code=409, message=message)
        except LimitReached as refused:
            message = console.texts("admin_users.error.limit", limit=refused.extra.get("limit"))
            return await self._user(console, user_id, status_code=402, message=message)
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done=invitation_resent"))

    @post("/{user_id:int}/two-factor/reset", opt=PUBLIC)
    async def reset_user_two_factor(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        async with tenant_scope(console.tenant):
            await reset_two_factor(console.user, user_id, origin=console.origin())
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done=two_factor_reset"))

    @post("/{user_id:int}/tokens/{token_id:int}/revoke", opt=PUBLIC)
    async def revoke_token(
        self, request: Request[Any, Any, Any], company: FromPath[str], user_id: FromPath[int], token_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        async with tenant_scope(console.tenant):
            await revoke_token_of(console.user, user_id, token_id, origin=console.origin())
        if token_id == console.user.token_id:
            # That was this very session: the next page is the sign-in page.
            return redirect(console, request, console.url("/login?signed_out=1"))
        return redirect(console, request, console.url(f"/admin/users/{user_id}?done=revoked#tokens"))

    @staticmethod
    async def _user(
        console: Console,
        user_id: int,
        *,
        notice: str | None = None,
        message: str | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
        form: dict[str, Any] | None = None,
    ) -> Response[str]:
        """One user's page; ``form`` keeps what was posted when it comes back with errors."""
        me = console.user
        async with tenant_scope(console.tenant):
            user = user_read(await user_in_scope(me, user_id))
            may_update = await may_act_on_user(me, user_id, "update")
            may_invite = await may_act_on_user(me, user_id, "create")
            facts = (await user_facts(console.tenant.id, [user_id], with_telegram=console.has_module("bot")))[user_id]
            roles = await role_choices(me) if may_update else []
            departments = await department_choices(me) if may_update else await _departments_if_readable(console)
            role_names = {role["key"]: _name(console, role["names"]) for role in roles} or await _role_names(console)
            tokens = await tokens_of(me, user_id) if may_update or user_id == me.user_id else None
            # Shown to whoever may reset it, and to the user themselves (the API's /me says it too).
            two_factor = await two_factor_enabled(user_id) if may_update or user_id == me.user_id else None
        # Every sign-in leaves a row: the revoked ones are only counted.
        live_tokens = [token for token in tokens or [] if token["revoked_at"] is None]
        shown = form or {"roles": user.roles, "department_id": user.department_id}
        return render(
            console,
            "admin_users_detail.html",
            status_code=status_code,
            user=user,
            facts=facts,
            may_update=may_update,
            may_invite=may_invite,
            invitation_days=INVITATION_DAYS,
            two_factor=two_factor,
            roles=roles,
            role_names=role_names,
            departments=departments,
            department_names={node.id: node.name for node in departments},
            tokens=live_tokens if tokens is not None else None,
            revoked_tokens=len(tokens or []) - len(live_tokens),
            now=datetime.now(UTC),
            form=shown,
            errors=errors or {},
            notice=notice,
            message=message,
            zone=zone_of(me.timezone),
        )


def _all(form: FormMultiDict, key: str) -> list[str]:
    return [str(value) for value in form.getall(key, [])]


def _name(console: Console, names: dict[str, str]) -> str:
    return names.get(console.texts.locale) or names.get("en") or ""


async def _role_names(console: Console) -> dict[str, str]:
    """Role key → name in the reader's language, when the role may read roles (else the
    keys are shown as they are)."""
    if console.may("roles", "read"):
        return {role["key"]: _name(console, role["names"]) for role in await role_rows(console.user)}
    if console.may("users", "create") or console.may("users", "update"):
        return {role["key"]: _name(console, role["names"]) for role in await role_choices(console.user)}
    return {}


async def _departments_if_readable(console: Console) -> list[Any]:
    return list(await department_tree(console.user)) if console.may("departments", "read") else []


register_page("/admin/users")
CONTROLLERS: list[type] = [UserPagesController, DepartmentPagesController, InvitationPageController]
