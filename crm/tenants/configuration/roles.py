"""Roles and their rights, editable by the company's admin within the edition's rules.

Every edition lets the admin change what its roles grant; only editions with the
``custom_roles`` module let the company add roles of its own. The admin role always keeps
full rights on users, roles and settings, so no company can lock itself out.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED

from crm.platform.auth import Origin, Principal
from crm.platform.editions import ACTIONS, ENTITIES, SCOPES
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.security import ensure_module, origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.tables import Role
from crm.tenants.users.scopes import require_right

ROLE_KEY = re.compile(r"^[a-z][a-z0-9_]{1,49}$")
ADMIN_LOCKED = ("users", "roles", "settings")
# Entities that belong to a module: an edition without the module has nothing of them to
# grant, so the console shows their rights as kept rather than editable (the admin role
# holds them anyway, for the day the company upgrades).
ENTITY_MODULES = {
    "deals": "deals",
    "tasks": "tasks",
    "mailings": "mailings",
    "processes": "processes",
    "analytics": "analytics",
    "imports": "import_export",
}

Rights = dict[str, dict[str, str]]


class RoleRead(msgspec.Struct, kw_only=True):
    key: str
    names: dict[str, str]
    rights: Rights
    is_system: bool


class RoleList(msgspec.Struct, kw_only=True):
    items: list[RoleRead]
    next_cursor: str | None = None


class RoleUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rights: Rights


class RoleCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    names: dict[str, str]
    rights: Rights


def rights_problems(rights: Rights, *, role_key: str) -> list[FieldError]:
    """Unknown entities, actions or scopes, and an admin role that would lose control."""
    errors = []
    for entity, actions in rights.items():
        if entity not in ENTITIES:
            errors.append(FieldError(f"rights.{entity}", f"unknown entity; known: {', '.join(ENTITIES)}"))
            continue
        for action, scope in actions.items():
            if action not in ACTIONS:
                errors.append(FieldError(f"rights.{entity}.{action}", f"unknown action; known: {', '.join(ACTIONS)}"))
            elif scope not in SCOPES:
                errors.append(FieldError(f"rights.{entity}.{action}", f"unknown scope; known: {', '.join(SCOPES)}"))
    if role_key == "admin":
        for entity in ADMIN_LOCKED:
            if any(rights.get(entity, {}).get(action) != "all" for action in ACTIONS):
                errors.append(FieldError(f"rights.{entity}", "the admin role keeps every action on it with scope all"))
    return errors


def _granted(rights: Rights) -> Rights:
    """Only what is granted: ``none`` is the same as leaving it out."""
    return {
        entity: {action: scope for action, scope in actions.items() if scope != "none"}
        for entity, actions in rights.items()
        if any(scope != "none" for scope in actions.values())
    }


async def role_rows(principal: Principal) -> list[dict[str, Any]]:
    """Every role (key, names, rights, is_system), in the order they were added, inside the
    open tenant scope."""
    require_right(principal, "roles", "read")
    rows: list[dict[str, Any]] = (
        await Role.select(Role.key, Role.names, Role.rights, Role.is_system).output(load_json=True).order_by(Role.id)
    )
    return rows


async def active_holders(principal: Principal) -> dict[str, int]:
    """Role key → how many active users hold it (as their main role or a further one)."""
    require_right(principal, "roles", "read")
    rows = await scope_connection().fetch(
        "SELECT r.key, count(u.id) AS holders FROM roles r"
        " LEFT JOIN users u ON u.is_active AND (u.role = r.key OR r.key = ANY(u.extra_roles))"
        " GROUP BY r.key"
    )
    return {row["key"]: int(row["holders"]) for row in rows}


async def update_role_rights(principal: Principal, key: str, rights: Rights, *, origin: Origin) -> RoleRead:
    """Replace what role ``key`` grants (its users get it on their next request)."""
    require_right(principal, "roles", "update")
    errors = rights_problems(rights, role_key=key)
    if errors:
        raise InvalidInput("The rights are not valid.", errors=errors)
    granted = _granted(rights)
    current = (
        await Role.select(Role.key, Role.names, Role.rights, Role.is_system)
        .output(load_json=True)
        .where(Role.key == key)
        .first()
    )
    if current is None:
        raise NotFound(f"There is no role {key!r}.")
    await Role.update({Role.rights: granted}).where(Role.key == key)
    await record_audit(
        origin.user(principal),
        "role.updated",
        entity="role",
        entity_id=key,
        changes={"rights": (current["rights"], granted)},
    )
    return RoleRead(key=key, names=current["names"], rights=granted, is_system=current["is_system"])


async def create_role(principal: Principal, data: RoleCreate, *, origin: Origin) -> RoleRead:
    """Add a role of the company's own (editions with the ``custom_roles`` module only)."""
    require_right(principal, "roles", "create")
    ensure_module(principal.tenant.edition, "custom_roles")
    errors = rights_problems(data.rights, role_key=data.key)
    if not ROLE_KEY.fullmatch(data.key):
        errors.append(FieldError("key", "must be 2 to 50 characters: lowercase letters, digits and _"))
    if set(data.names) != {"ru", "en"} or not all(name.strip() for name in data.names.values()):
        errors.append(FieldError("names", "needs a non-empty ru and en name"))
    elif any(len(name.strip()) > 100 for name in data.names.values()):
        errors.append(FieldError("names", "must be at most 100 characters each"))
    if errors:
        raise InvalidInput("The role is not valid.", errors=errors)
    names = {language: name.strip() for language, name in data.names.items()}
    rights = _granted(data.rights)
    if await Role.exists().where(Role.key == data.key):
        raise Conflict(f"A role {data.key!r} exists.", errors=[FieldError("key", "is already taken")])
    await Role.insert(Role(key=data.key, names=names, rights=rights, is_system=False))
    await record_audit(
        origin.user(principal),
        "role.created",
        entity="role",
        entity_id=data.key,
        changes={"rights": (None, rights), "names": (None, names)},
    )
    return RoleRead(key=data.key, names=names, rights=rights, is_system=False)


class RolesController(Controller):
    path = "/api/v1/roles"
    tags = ["roles"]

    @get("/", opt=permission("roles", "read"), operation_id="listRoles", summary="Roles and what they grant")
    async def list_roles(self, principal: NamedDependency[Principal]) -> RoleList:
        async def rows() -> list[dict[str, Any]]:
            return await role_rows(principal)

        return RoleList(items=msgspec.convert(await read_in_tenant(principal.tenant, rows), list[RoleRead]))

    @patch(
        "/{key:str}",
        opt=permission("roles", "update"),
        operation_id="updateRole",
        summary="Replace what a role grants (takes effect on its users' next request)",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        key: Annotated[str, PathParameter(max_length=50)],
        data: JSONBody[RoleUpdate],
    ) -> RoleRead:
        async with tenant_scope(principal.tenant):
            return await update_role_rights(principal, key, data.rights, origin=origin_of(request))

    @post(
        "/",
        opt=permission("roles", "create"),
        guards=[requires_module("custom_roles")],
        status_code=HTTP_201_CREATED,
        operation_id="createRole",
        summary="Add a role of your own",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[RoleCreate],
    ) -> RoleRead:
        async with tenant_scope(principal.tenant):
            return await create_role(principal, data, origin=origin_of(request))
