"""Rules about users that every channel shares: who may see or change whom, and changes."""

from __future__ import annotations

from typing import Any

from piccolo.columns.combination import Combinable

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.tenancy import scope_connection
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.tables import Role
from crm.tenants.users.tables import Department, User

_SUBTREE = """
WITH RECURSIVE subtree AS (
    SELECT id FROM departments WHERE id = $1
    UNION ALL
    SELECT d.id FROM departments d JOIN subtree s ON d.parent_id = s.id
)
SELECT id FROM subtree
"""


async def department_subtree(root: int) -> list[int]:
    """The department and all departments below it (inside the open tenant scope)."""
    return [row["id"] for row in await scope_connection().fetch(_SUBTREE, root)]


async def users_in_scope(principal: Principal, action: str) -> Combinable:
    """SQL condition for the users ``principal`` may ``action`` (read, update, …).

    ``all``: everyone; ``department``: users of the principal's department and the ones
    below it, plus the principal; ``own``: the principal alone; ``none``: nobody."""
    scope = principal.scope("users", action)
    if scope == "all":
        return User.id > 0
    if scope == "department" and principal.department_id is not None:
        departments = await department_subtree(principal.department_id)
        return User.department_id.is_in(departments) | (User.id == principal.user_id)
    if scope in ("department", "own"):
        return User.id == principal.user_id
    return User.id < 0


async def update_user(principal: Principal, user_id: int, changes: dict[str, Any], *, origin: Origin) -> dict[str, Any]:
    """Change a user's department and/or role; audited with before and after."""
    condition = await users_in_scope(principal, "update")
    current = await User.select(User.id, User.department_id, User.role).where(User.id == user_id, condition).first()
    if current is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    errors = []
    if changes.get("department_id") is not None and not await Department.exists().where(
        Department.id == changes["department_id"]
    ):
        errors.append(FieldError("department_id", "no such department"))
    if "role" in changes and not await Role.exists().where(Role.key == changes["role"]):
        errors.append(FieldError("role", "no such role"))
    if errors:
        raise InvalidInput("The user change has invalid fields.", errors=errors)
    diff = {field: (current[field], value) for field, value in changes.items() if current[field] != value}
    if diff:
        await User.update({getattr(User, field): after for field, (_, after) in diff.items()}).where(User.id == user_id)
        await record_audit(
            origin.actor("user", principal.email, principal.user_id),
            "user.updated",
            entity="user",
            entity_id=user_id,
            changes=diff,
        )
    return {**current, **changes}


async def create_department(principal: Principal, name: str, parent_id: int | None, *, origin: Origin) -> int:
    name = name.strip()
    errors = []
    if not 1 <= len(name) <= 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    if parent_id is not None and not await Department.exists().where(Department.id == parent_id):
        errors.append(FieldError("parent_id", "no such department"))
    if errors:
        raise InvalidInput("The department has invalid fields.", errors=errors)
    rows = await Department.insert(Department(name=name, parent_id=parent_id)).returning(Department.id)
    department_id = int(rows[0]["id"])
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "department.created",
        entity="department",
        entity_id=department_id,
        changes={"name": (None, name), "parent_id": (None, parent_id)},
    )
    return department_id


async def set_user_active(principal: Principal, user_id: int, active: bool, *, origin: Origin) -> None:
    """Deactivate or reactivate a user. Takes effect on the user's very next request: every
    token is checked against ``is_active`` each time."""
    if user_id == principal.user_id and not active:
        raise InvalidInput("You cannot deactivate yourself.", errors=[FieldError("user_id", "is you")])
    condition = await users_in_scope(principal, "update")
    current = await User.select(User.is_active).where(User.id == user_id, condition).first()
    if current is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    if current["is_active"] == active:
        return
    await User.update({User.is_active: active}).where(User.id == user_id)
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "user.reactivated" if active else "user.deactivated",
        entity="user",
        entity_id=user_id,
        changes={"is_active": (not active, active)},
    )
