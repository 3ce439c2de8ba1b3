"""Admin pages for roles: the list (and adding a role of the company's own where the
edition has ``custom_roles``), and one role's rights matrix — rows are entities, columns
actions, each cell a choice of scope.

The edition's rules hold here as in the API (crm/tenants/configuration/roles.py): the admin
role keeps every action on users, roles and settings with scope ``all`` (shown fixed), and
the rights on entities of modules the edition lacks are shown as kept, not editable — a
save leaves them exactly as they are.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui import admin_texts  # noqa: F401 - the admin pages' words
from crm.admin_ui.admin_form_errors import form_errors
from crm.admin_ui.console import Console, open_console, redirect, render
from crm.admin_ui.navigation import register_page
from crm.platform.editions import ACTIONS, ENTITIES, SCOPES
from crm.platform.errors import Conflict, InvalidInput, NotFound
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.configuration.roles import (
    ADMIN_LOCKED,
    ENTITY_MODULES,
    RoleCreate,
    active_holders,
    create_role,
    role_rows,
    update_role_rights,
)

CREATE_ERRORS = {
    "key:is already": "admin_roles.error.key_taken",
    "key": "admin_roles.error.key",
    "names": "admin_roles.error.names",
}


def locked(role_key: str, entity: str) -> bool:
    """A cell the edition fixes: the admin role's rights on users, roles and settings."""
    return role_key == "admin" and entity in ADMIN_LOCKED


def _name(console: Console, names: dict[str, str]) -> str:
    return names.get(console.texts.locale) or names.get("en") or ""


class RolePagesController(Controller):
    path = "/{company:str}/admin/roles"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def list_roles(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        return await self._list(console)

    @post("/", opt=PUBLIC)
    async def create(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        form = {key: str((await request.form()).get(key) or "") for key in ("key", "name_ru", "name_en", "copy_from")}
        role_key = form["key"].strip()
        try:
            async with tenant_scope(console.tenant):
                # A new role starts from the rights of one chosen to copy (or from nothing).
                rights: dict[str, dict[str, str]] = {}
                if form["copy_from"]:
                    source = [row for row in await role_rows(console.user) if row["key"] == form["copy_from"]]
                    rights = source[0]["rights"] if source else {}
                data = RoleCreate(
                    key=role_key,
                    names={"ru": form["name_ru"], "en": form["name_en"]},
                    rights=rights,
                )
                await create_role(console.user, data, origin=console.origin())
        except (InvalidInput, Conflict) as problem:
            errors = form_errors(console.texts, problem, CREATE_ERRORS)
            return await self._list(console, status_code=problem.status, form=form, errors=errors)
        return redirect(console, request, console.url(f"/admin/roles/{role_key}?done=created"))

    @get("/{key:str}", opt=PUBLIC)
    async def role(self, request: Request[Any, Any, Any], company: FromPath[str], key: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        done = str(request.query_params.get("done") or "")
        notice = {"saved": "common.saved", "created": "admin_roles.notice.created"}.get(done)
        return await self._matrix(console, key, notice=console.texts(notice) if notice else None)

    @post("/{key:str}", opt=PUBLIC)
    async def update(
        self, request: Request[Any, Any, Any], company: FromPath[str], key: FromPath[str]
    ) -> Response[str]:
        console = await open_console(request, company)
        form = await request.form()
        try:
            async with tenant_scope(console.tenant):
                current = await _role(console, key)
                rights: dict[str, dict[str, str]] = {}
                for entity in ENTITIES:
                    if not _editable(console, entity):
                        # Not in this edition: kept exactly as stored, whatever was posted.
                        rights[entity] = dict(current["rights"].get(entity, {}))
                        continue
                    rights[entity] = {action: str(form.get(f"{entity}.{action}") or "none") for action in ACTIONS}
                await update_role_rights(console.user, key, rights, origin=console.origin())
        except InvalidInput as problem:
            posted: dict[str, dict[str, str]] = {
                entity: {action: str(form.get(f"{entity}.{action}") or "none") for action in ACTIONS}
                for entity in ENTITIES
            }
            errors = form_errors(console.texts, problem, {})
            return await self._matrix(console, key, status_code=422, posted=posted, errors=errors)
        return redirect(console, request, console.url(f"/admin/roles/{key}?done=saved"))

    @staticmethod
    async def _list(
        console: Console,
        *,
        status_code: int = 200,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Response[str]:
        async with tenant_scope(console.tenant):
            roles = await role_rows(console.user)
            holders = await active_holders(console.user)
        return render(
            console,
            "admin_roles.html",
            status_code=status_code,
            roles=[{**role, "name": _name(console, role["names"])} for role in roles],
            holders=holders,
            may_create=console.may("roles", "create", "custom_roles"),
            custom_roles_plans=_plans_with(console, "custom_roles"),
            form=form or {"key": "", "name_ru": "", "name_en": "", "copy_from": ""},
            errors=errors or {},
        )

    @staticmethod
    async def _matrix(
        console: Console,
        key: str,
        *,
        status_code: int = 200,
        notice: str | None = None,
        posted: dict[str, dict[str, str]] | None = None,
        errors: dict[str, str] | None = None,
    ) -> Response[str]:
        async with tenant_scope(console.tenant):
            role = await _role(console, key)
        rights = posted or role["rights"]
        rows = [
            {
                "entity": entity,
                "editable": _editable(console, entity),
                "locked": locked(key, entity),
                "scopes": {action: rights.get(entity, {}).get(action, "none") for action in ACTIONS},
                "error": (errors or {}).get(f"rights.{entity}")
                or next(
                    (message for field, message in (errors or {}).items() if field.startswith(f"rights.{entity}.")),
                    None,
                ),
            }
            for entity in ENTITIES
        ]
        return render(
            console,
            "admin_roles_detail.html",
            status_code=status_code,
            role=role,
            name=_name(console, role["names"]),
            rows=rows,
            actions=ACTIONS,
            scopes=SCOPES,
            may_update=console.may("roles", "update"),
            notice=notice,
            errors=errors or {},
        )


def _plans_with(console: Console, module: str) -> str:
    """The names of the plans that include ``module``, when the company's plan does not."""
    if console.has_module(module):
        return ""
    editions = console.services.editions
    return ", ".join(editions[key].names.get(console.texts.locale) for key in editions.with_module(module))


def _editable(console: Console, entity: str) -> bool:
    module = ENTITY_MODULES.get(entity)
    return module is None or console.has_module(module)


async def _role(console: Console, key: str) -> dict[str, Any]:
    for row in await role_rows(console.user):
        if row["key"] == key:
            return row
    raise NotFound(f"There is no role {key!r}.")


register_page("/admin/roles")
CONTROLLERS: list[type] = [RolePagesController]
