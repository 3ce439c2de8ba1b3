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

from crm.platform.auth import Principal
from crm.platform.editions import ACTIONS, ENTITIES, SCOPES
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.tables import Role

ROLE_KEY = re.compile(r"^[a-z][a-z0-9_]{1,49}$")
ADMIN_LOCKED = ("users", "roles", "settings")

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


class RolesController(Controller):
    path = "/api/v1/roles"
    tags = ["roles"]

    @get("/", opt=permission("roles", "read"), operation_id="listRoles", summary="Roles and what they grant")
    async def list_roles(self, principal: NamedDependency[Principal]) -> RoleList:
        rows = await read_in_tenant(
            principal.tenant,
            Role.select(Role.key, Role.names, Role.rights, Role.is_system).output(load_json=True).order_by(Role.id).run,
        )
        return RoleList(items=msgspec.convert(rows, list[RoleRead]))

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
        errors = rights_problems(data.rights, role_key=key)
        if errors:
            raise InvalidInput("The rights are not valid.", errors=errors)
        rights = _granted(data.rights)
        async with tenant_scope(principal.tenant):
            current = (
                await Role.select(Role.key, Role.names, Role.rights, Role.is_system)
                .output(load_json=True)
                .where(Role.key == key)
                .first()
            )
            if current is None:
                raise NotFound(f"There is no role {key!r}.")
            await Role.update({Role.rights: rights}).where(Role.key == key)
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "role.updated",
                entity="role",
                entity_id=key,
                changes={"rights": (current["rights"], rights)},
            )
        return RoleRead(key=key, names=current["names"], rights=rights, is_system=current["is_system"])

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
        errors = rights_problems(data.rights, role_key=data.key)
        if not ROLE_KEY.fullmatch(data.key):
            errors.append(FieldError("key", "must be 2 to 50 characters: lowercase letters, digits and _"))
        if set(data.names) != {"ru", "en"} or not all(name.strip() for name in data.names.values()):
            errors.append(FieldError("names", "needs a non-empty ru and en name"))
        if errors:
            raise InvalidInput("The role is not valid.", errors=errors)
        rights = _granted(data.rights)
        async with tenant_scope(principal.tenant):
            if await Role.exists().where(Role.key == data.key):
                raise Conflict(f"A role {data.key!r} exists.", errors=[FieldError("key", "is already taken")])
            await Role.insert(Role(key=data.key, names=data.names, rights=rights, is_system=False))
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "role.created",
                entity="role",
                entity_id=data.key,
                changes={"rights": (None, rights), "names": (None, data.names)},
            )
        return RoleRead(key=data.key, names=data.names, rights=rights, is_system=False)
