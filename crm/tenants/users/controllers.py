"""Users and departments of the caller's company, within what the caller's role allows."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, IdFilter, Limit, Sort, page_of
from crm.platform.security import origin_of, permission
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.users.departments import delete_department, department_rows, update_department
from crm.tenants.users.reads import READ_COLUMNS, USER_LIST, UserFilters, user_in_scope, user_page, user_read
from crm.tenants.users.schemas import (
    DepartmentCreate,
    DepartmentList,
    DepartmentRead,
    DepartmentUpdate,
    UserPage,
    UserRead,
    UserUpdate,
)
from crm.tenants.users.services import create_department, set_user_active, update_user
from crm.tenants.users.tables import User

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get(
        "/",
        opt=permission("users", "read"),
        operation_id="listUsers",
        summary="Users of your company you may see",
        description="Sort by id, name, email or created_at. `q` matches name or e-mail.",
    )
    async def list_users(
        self,
        principal: NamedDependency[Principal],
        q: FromQuery[str | None] = None,
        department_id: IdFilter = None,
        role: FromQuery[str | None] = None,
        is_active: FromQuery[bool | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> UserPage:
        ordering = USER_LIST.ordering(sort)
        filters = UserFilters(q=q, department_id=department_id, role=role, is_active=is_active)

        async def page() -> list[dict[str, Any]]:
            return await user_page(principal, filters, ordering, cursor, limit)

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return UserPage(items=[user_read(row) for row in rows], next_cursor=after)

    @get("/{user_id:int}", opt=permission("users", "read"), operation_id="getUser", summary="One user you may see")
    async def get_user(self, principal: NamedDependency[Principal], user_id: Id) -> UserRead:
        async def one() -> dict[str, Any]:
            return await user_in_scope(principal, user_id)

        return user_read(await read_in_tenant(principal.tenant, one))

    @patch(
        "/{user_id:int}",
        opt=permission("users", "update"),
        operation_id="updateUser",
        summary="Change a user's name, locale, timezone, working hours, birthday, department or roles",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        user_id: Id,
        data: JSONBody[UserUpdate],
    ) -> UserRead:
        changes = {
            field: value for field in data.__struct_fields__ if (value := getattr(data, field)) is not msgspec.UNSET
        }
        async with tenant_scope(principal.tenant):
            await update_user(principal, user_id, changes, origin=origin_of(request))
            row = await User.select(*READ_COLUMNS).where(User.id == user_id).output(load_json=True).first()
        assert row is not None
        return user_read(row)

    @post(
        "/{user_id:int}/deactivate",
        opt=permission("users", "update"),
        status_code=HTTP_200_OK,
        operation_id="deactivateUser",
        summary="Deactivate a user: their tokens stop working on the next request",
    )
    async def deactivate(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], user_id: Id
    ) -> UserRead:
        return await self._set_active(request, principal, user_id, active=False)

    @post(
        "/{user_id:int}/reactivate",
        opt=permission("users", "update"),
        status_code=HTTP_200_OK,
        operation_id="reactivateUser",
        summary="Reactivate a deactivated user",
    )
    async def reactivate(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], user_id: Id
    ) -> UserRead:
        return await self._set_active(request, principal, user_id, active=True)

    @staticmethod
    async def _set_active(
        request: Request[Any, Any, Any], principal: Principal, user_id: int, *, active: bool
    ) -> UserRead:
        async with tenant_scope(principal.tenant):
            await set_user_active(principal, user_id, active, origin=origin_of(request))
            row = await User.select(*READ_COLUMNS).where(User.id == user_id).output(load_json=True).first()
        assert row is not None
        return user_read(row)


class DepartmentsController(Controller):
    path = "/api/v1/departments"
    tags = ["departments"]

    @get("/", opt=permission("departments", "read"), operation_id="listDepartments", summary="The department tree")
    async def list_departments(self, principal: NamedDependency[Principal]) -> DepartmentList:
        async def rows() -> list[dict[str, Any]]:
            return await department_rows(principal)

        return DepartmentList(items=msgspec.convert(await read_in_tenant(principal.tenant, rows), list[DepartmentRead]))

    @post(
        "/",
        opt=permission("departments", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createDepartment",
        summary="Add a department, optionally under another",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[DepartmentCreate]
    ) -> DepartmentRead:
        async with tenant_scope(principal.tenant):
            department_id = await create_department(principal, data.name, data.parent_id, origin=origin_of(request))
        return DepartmentRead(id=department_id, name=data.name.strip(), parent_id=data.parent_id)

    @patch(
        "/{department_id:int}",
        opt=permission("departments", "update"),
        operation_id="updateDepartment",
        summary="Rename a department or move it under another (never under itself or below it)",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        department_id: Id,
        data: JSONBody[DepartmentUpdate],
    ) -> DepartmentRead:
        changes = {
            field: value for field in data.__struct_fields__ if (value := getattr(data, field)) is not msgspec.UNSET
        }
        async with tenant_scope(principal.tenant):
            row = await update_department(principal, department_id, changes, origin=origin_of(request))
        return DepartmentRead(id=row["id"], name=row["name"], parent_id=row["parent_id"])

    @delete(
        "/{department_id:int}",
        opt=permission("departments", "delete"),
        operation_id="deleteDepartment",
        summary="Delete a department with no departments under it and no users (409 otherwise)",
    )
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], department_id: Id
    ) -> None:
        async with tenant_scope(principal.tenant):
            await delete_department(principal, department_id, origin=origin_of(request))
