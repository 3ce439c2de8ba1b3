"""The department tree: reading it, renaming and moving a department, deleting an empty one.

Every channel (API, console) goes through these functions, so the rules live here once:
a department is never moved under itself or a department below it, and only a department
with no departments under it and no users in it can be deleted (users are moved first —
losing their department silently would change what a ``department`` scope lets them see).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.tenancy import scope_connection
from crm.tenants.audit.services import record_audit
from crm.tenants.users.scopes import require_right
from crm.tenants.users.tables import Department, User

# Moves take this lock: two concurrent moves (A under B, B under A) each look acyclic on
# their own, so they must not interleave. Reads and renames are not blocked.
_LOCK_FOR_MOVES = "LOCK TABLE departments IN SHARE ROW EXCLUSIVE MODE"
# The departments below one (not itself), in one round trip.
_BELOW = (
    "WITH RECURSIVE below AS (SELECT id FROM departments WHERE parent_id = $1"
    " UNION SELECT d.id FROM departments d JOIN below b ON d.parent_id = b.id) SELECT id FROM below"
)


@dataclass(frozen=True)
class DepartmentNode:
    """One department in tree order: ``depth`` 0 for a top-level one."""

    id: int
    name: str
    parent_id: int | None
    depth: int
    users: int


async def department_rows(principal: Principal) -> list[dict[str, Any]]:
    """Every department (id, name, parent_id), by id, inside the open tenant scope."""
    require_right(principal, "departments", "read")
    rows: list[dict[str, Any]] = await Department.select(Department.id, Department.name, Department.parent_id).order_by(
        Department.id
    )
    return rows


async def department_tree(principal: Principal) -> list[DepartmentNode]:
    """The departments in tree order (each followed by the ones below it, by name), with
    how many users (active or not) each holds; inside the open tenant scope."""
    require_right(principal, "departments", "read")
    return await ordered_tree()


async def ordered_tree() -> list[DepartmentNode]:
    """The tree without a rights check: callers check the right that brings them here."""
    rows = await Department.select(Department.id, Department.name, Department.parent_id).order_by(Department.id)
    counts = {
        row["department_id"]: row["count"]
        for row in await scope_connection().fetch(
            "SELECT department_id, count(*) AS count FROM users WHERE department_id IS NOT NULL GROUP BY department_id"
        )
    }
    children: dict[int | None, list[dict[str, Any]]] = {}
    known = {row["id"] for row in rows}
    for row in rows:
        # A parent that is not in the list cannot exist (foreign key), but never lose a row.
        parent = row["parent_id"] if row["parent_id"] in known else None
        children.setdefault(parent, []).append(row)
    ordered: list[DepartmentNode] = []
    # Depth-first without recursion: a tree of any depth renders.
    stack = [(row, 0) for row in _by_name(children.get(None, []))]
    while stack:
        row, depth = stack.pop()
        ordered.append(DepartmentNode(row["id"], row["name"], row["parent_id"], depth, int(counts.get(row["id"], 0))))
        stack.extend((child, depth + 1) for child in _by_name(children.get(row["id"], [])))
    return ordered


def _by_name(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By name, reversed: popped from a stack, they come out in alphabetical order."""
    return sorted(rows, key=lambda item: (item["name"].casefold(), item["id"]), reverse=True)


async def update_department(
    principal: Principal, department_id: int, changes: dict[str, Any], *, origin: Origin
) -> dict[str, Any]:
    """Rename (``name``) and/or move (``parent_id``, None: to the top) a department."""
    require_right(principal, "departments", "update")
    if "parent_id" in changes:
        await scope_connection().execute(_LOCK_FOR_MOVES)
    current = await _department(department_id)
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    if "name" in changes:
        values["name"] = str(changes["name"]).strip()
        if not 1 <= len(values["name"]) <= 200:
            errors.append(FieldError("name", "must be 1 to 200 characters"))
    if "parent_id" in changes:
        parent_id = changes["parent_id"]
        values["parent_id"] = parent_id
        if parent_id is not None:
            if parent_id == department_id:
                errors.append(FieldError("parent_id", "cannot be the department itself"))
            elif not 1 <= parent_id <= MAX_ID or not await Department.exists().where(Department.id == parent_id):
                errors.append(FieldError("parent_id", "no such department"))
            elif parent_id in await _below(department_id):
                errors.append(FieldError("parent_id", "is inside this department"))
    if errors:
        raise InvalidInput("The department change has invalid fields.", errors=errors)
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if diff:
        await Department.update({getattr(Department, field): after for field, (_, after) in diff.items()}).where(
            Department.id == department_id
        )
        await record_audit(
            origin.user(principal), "department.updated", entity="department", entity_id=department_id, changes=diff
        )
    return {**current, **values}


async def delete_department(principal: Principal, department_id: int, *, origin: Origin) -> None:
    """Delete a department that has no departments under it and no users in it (409 naming
    what is left otherwise)."""
    require_right(principal, "departments", "delete")
    await scope_connection().execute(_LOCK_FOR_MOVES)
    current = await _department(department_id)
    if await Department.exists().where(Department.parent_id == department_id):
        raise Conflict(
            "The department has departments under it; move or delete them first.",
            errors=[FieldError("department_id", "has departments under it")],
        )
    if await User.exists().where(User.department_id == department_id):
        raise Conflict(
            "The department has users; move them to another department first.",
            errors=[FieldError("department_id", "has users")],
        )
    await Department.delete().where(Department.id == department_id)
    await record_audit(
        origin.user(principal),
        "department.deleted",
        entity="department",
        entity_id=department_id,
        changes={"name": (current["name"], None), "parent_id": (current["parent_id"], None)},
    )


async def _department(department_id: int) -> dict[str, Any]:
    row = None
    if 1 <= department_id <= MAX_ID:
        row = (
            await Department.select(Department.id, Department.name, Department.parent_id)
            .where(Department.id == department_id)
            .first()
        )
    if row is None:
        raise NotFound(f"There is no department {department_id}.")
    return row


async def _below(department_id: int) -> set[int]:
    return {row["id"] for row in await scope_connection().fetch(_BELOW, department_id)}
