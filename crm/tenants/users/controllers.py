"""Users of the caller's tenant (the rights issue adds invitation, roles and scopes)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter
from piccolo.columns.combination import Combinable

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.pagination import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, decode_cursor, next_cursor
from crm.platform.security import permission
from crm.platform.tenancy import read_in_tenant
from crm.tenants.users.schemas import UserPage, UserRead
from crm.tenants.users.tables import User

READ_COLUMNS = (
    User.id,
    User.email,
    User.name,
    User.locale,
    User.timezone,
    User.role,
    User.is_active,
    User.created_at,
)


def visible_users(principal: Principal) -> Combinable:
    """The SQL condition for the users this principal may read.

    ``all`` sees everyone. Departments are not modelled yet, so ``department`` (like
    ``own``) sees the user alone for now: denied unless granted, never wider."""
    if principal.scope("users", "read") == "all":
        return User.id > 0
    return User.id == principal.user_id


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/", opt=permission("users", "read"), operation_id="listUsers", summary="Users of your company, by id")
    async def list_users(
        self,
        principal: NamedDependency[Principal],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> UserPage:
        after = decode_cursor(cursor)
        rows = await read_in_tenant(
            principal.tenant,
            lambda: (
                User.select(*READ_COLUMNS)
                .where(User.id > after, visible_users(principal))
                .order_by(User.id)
                .limit(limit + 1)
                .run()
            ),
        )
        items = msgspec.convert(rows[:limit], list[UserRead])
        return UserPage(items=items, next_cursor=next_cursor(items, limit, has_more=len(rows) > limit))

    @get("/{user_id:int}", opt=permission("users", "read"), operation_id="getUser", summary="One user of your company")
    async def get_user(
        self,
        principal: NamedDependency[Principal],
        user_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
    ) -> UserRead:
        row = await read_in_tenant(
            principal.tenant,
            lambda: User.select(*READ_COLUMNS).where(User.id == user_id, visible_users(principal)).first().run(),
        )
        if row is None:
            raise NotFound(f"There is no user {user_id}.")
        return msgspec.convert(row, UserRead)
