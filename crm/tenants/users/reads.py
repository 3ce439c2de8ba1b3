"""Users as the API shows them (never the password hash or the two-factor secret), and the
reads every channel shares: the list with its filters, and one user within the role's scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.listing import MAX_ID, ListSpec, Ordering, escape_like, page_query
from crm.tenants.users.schemas import UserRead
from crm.tenants.users.scopes import require_right
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User

READ_COLUMNS = (
    User.id,
    User.email,
    User.name,
    User.locale,
    User.timezone,
    User.role,
    User.extra_roles,
    User.working_hours,
    User.department_id,
    User.birthday,
    User.is_active,
    User.created_at,
)
USER_LIST = ListSpec(sortable={"id": User.id, "name": User.name, "email": User.email, "created_at": User.created_at})


@dataclass(frozen=True)
class UserFilters:
    """The list's filters: ``q`` matches name or e-mail; the rest are equalities (None: any)."""

    q: str | None = None
    department_id: int | None = None
    role: str | None = None
    is_active: bool | None = None


def user_read(row: dict[str, Any]) -> UserRead:
    """A row selected with READ_COLUMNS (JSON loaded) as the API shows it."""
    fields = dict(row)
    extra = fields.pop("extra_roles") or []
    fields["roles"] = [fields["role"], *(role for role in extra if role != fields["role"])]
    return msgspec.convert(fields, UserRead)


async def user_page(
    principal: Principal, filters: UserFilters, ordering: Ordering, cursor: str | None, limit: int
) -> list[dict[str, Any]]:
    """One page (plus one row, for the next cursor) of the users ``principal`` may see,
    inside the open tenant scope."""
    require_right(principal, "users", "read")
    query = User.select(*READ_COLUMNS).where(await users_in_scope(principal, "read")).output(load_json=True)
    if filters.q and filters.q.strip():
        pattern = f"%{escape_like(filters.q.strip())}%"
        query = query.where(User.name.ilike(pattern) | User.email.ilike(pattern))
    if filters.department_id is not None:
        query = query.where(User.department_id == filters.department_id)
    if filters.role is not None:
        query = query.where(User.role == filters.role)
    if filters.is_active is not None:
        query = query.where(User.is_active.eq(filters.is_active))
    rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).run()
    return rows


async def user_in_scope(principal: Principal, user_id: int, action: str = "read") -> dict[str, Any]:
    """User ``user_id`` (READ_COLUMNS) if the role lets ``principal`` ``action`` them; 403
    when the role grants no such right at all, 404 when this user is outside its scope."""
    require_right(principal, "users", action)
    if not 1 <= user_id <= MAX_ID:
        raise NotFound(f"There is no user {user_id}.")
    visible = await users_in_scope(principal, action)
    row: dict[str, Any] | None = (
        await User.select(*READ_COLUMNS).where(User.id == user_id, visible).output(load_json=True).first()
    )
    if row is None:
        raise NotFound(f"There is no user {user_id}.")
    return row


async def may_act_on_user(principal: Principal, user_id: int, action: str) -> bool:
    """Whether the role's ``action`` scope on users covers user ``user_id`` (no exception)."""
    if principal.scope("users", action) == "none":
        return False
    return bool(await User.exists().where(User.id == user_id, await users_in_scope(principal, action)))
