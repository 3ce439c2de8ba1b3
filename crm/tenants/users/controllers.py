"""Users of the caller's tenant (the rights issue adds invitation, roles and scopes)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.pagination import DEFAULT_LIMIT, MAX_LIMIT, check_limit, decode_cursor, page
from crm.platform.services import services_of
from crm.platform.tenancy import read_in_tenant
from crm.tenants.users.tables import User

PUBLIC_COLUMNS = (
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
        state: State,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        after = decode_cursor(cursor)
        limit = check_limit(limit)
        rows = await read_in_tenant(
            principal.tenant,
            services_of(state).db.engine,
            lambda: User.select(*PUBLIC_COLUMNS).where(User.id > after).order_by(User.id).limit(limit + 1).run(),
        )
        return page(rows, limit)

    @get("/{user_id:int}", operation_id="getUser", summary="One user of your company")
    async def get_user(
        self, principal: NamedDependency[Principal], state: State, user_id: FromPath[int]
    ) -> dict[str, Any]:
        row = await read_in_tenant(
            principal.tenant,
            services_of(state).db.engine,
            lambda: User.select(*PUBLIC_COLUMNS).where(User.id == user_id).first().run(),
        )
        if row is None:
            raise NotFound(f"There is no user {user_id}.")
        return row
