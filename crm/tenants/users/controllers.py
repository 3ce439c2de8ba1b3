"""Users of the caller's tenant (the rights issue adds invitation, roles and scopes)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, PathParameter, QueryParameter

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.pagination import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, decode_cursor, next_cursor
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


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]

    @get("/", operation_id="listUsers", summary="Users of your company, by id")
    async def list_users(
        self,
        principal: NamedDependency[Principal],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> UserPage:
        after = decode_cursor(cursor)
        rows = await read_in_tenant(
            principal.tenant,
            lambda: User.select(*READ_COLUMNS).where(User.id > after).order_by(User.id).limit(limit + 1).run(),
        )
        items = msgspec.convert(rows[:limit], list[UserRead])
        return UserPage(items=items, next_cursor=next_cursor(items, limit, has_more=len(rows) > limit))

    @get("/{user_id:int}", operation_id="getUser", summary="One user of your company")
    async def get_user(
        self,
        principal: NamedDependency[Principal],
        user_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
    ) -> UserRead:
        row = await read_in_tenant(
            principal.tenant, lambda: User.select(*READ_COLUMNS).where(User.id == user_id).first().run()
        )
        if row is None:
            raise NotFound(f"There is no user {user_id}.")
        return msgspec.convert(row, UserRead)
