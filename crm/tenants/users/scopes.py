"""The SQL condition that turns a role's scope into "which records may this user touch".

Every list and lookup of owned records (clients, deals, activities, tasks, …) adds this
condition to its query, so rows the user may not see are never loaded. ``own`` means the
user is the record's responsible (or its author); ``department`` means the responsible
(or author) works in the user's department or a department below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from piccolo.columns import Column
from piccolo.columns.combination import Combinable, WhereRaw
from piccolo.table import Table

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, Forbidden, NotFound
from crm.platform.listing import MAX_ID
from crm.tenants.users.tables import User

EVERYTHING = WhereRaw("TRUE")
NOTHING = WhereRaw("FALSE")
# The users of a department and of every department below it, computed inside the list
# query itself: one round trip instead of two.
_SUBTREE_USERS = (
    "(WITH RECURSIVE subtree AS ("
    "SELECT id FROM departments WHERE id = {}"
    " UNION ALL SELECT d.id FROM departments d JOIN subtree s ON d.parent_id = s.id)"
    " SELECT u.id FROM users u JOIN subtree s ON u.department_id = s.id)"
)


def require_right(principal: Principal, entity: str, action: str) -> None:
    """403 naming the right unless the role grants ``entity.action`` at all. The API's route
    guard says the same; the console and other callers of the services rely on this one."""
    if principal.scope(entity, action) == "none":
        raise Forbidden(f"Your role does not allow {action} on {entity}.", permission=f"{entity}.{action}")


async def records_in_scope(principal: Principal, entity: str, action: str, *owners: Column) -> Combinable:
    """SQL condition for the rows of ``entity`` that ``principal`` may ``action``.

    ``owners`` are the user-id columns that make a row someone's (responsible, author)."""
    scope = principal.scope(entity, action)
    if scope == "all":
        return EVERYTHING
    if scope == "none" or not owners:
        return NOTHING
    if scope != "department" or principal.department_id is None:
        return _any_owner_is(owners, principal.user_id)
    # The user works in that department, so its users include them: no separate "= me" test.
    condition: Combinable | None = None
    for owner in owners:
        # One sub-select per owner column; PostgreSQL runs it once, as a hashed sub-plan.
        in_subtree = WhereRaw(f'"{owner._meta.db_column_name}" IN {_SUBTREE_USERS}', principal.department_id)
        condition = in_subtree if condition is None else condition | in_subtree
    assert condition is not None
    return condition


async def row_in_scope(
    table: type[Table],
    columns: Sequence[Column],
    row_id: int,
    allowed: Combinable,
    *,
    noun: str,
    action: str,
    lock: bool = False,
) -> dict[str, Any]:
    """Row ``row_id`` of ``table`` if ``allowed`` (the caller's condition for ``action``)
    takes it in, else 404 naming it a ``noun``. With ``lock`` the row stays locked (FOR
    UPDATE) until the transaction ends."""
    if not 1 <= row_id <= MAX_ID:
        raise NotFound(f"There is no {noun} {row_id}.")
    query = table.select(*columns).where(table._meta.primary_key == row_id, allowed).output(load_json=True)
    if lock:
        query = query.lock_rows()
    row: dict[str, Any] | None = await query.first()
    if row is None:
        raise NotFound(f"There is no {noun} {row_id} you may {action}.")
    return row


def _any_owner_is(owners: tuple[Column, ...], user_id: int) -> Combinable:
    condition: Combinable = owners[0] == user_id
    for owner in owners[1:]:
        condition = condition | (owner == user_id)
    return condition


async def may_assign(principal: Principal, entity: str, user_id: int) -> bool:
    """Whether ``principal`` may make active user ``user_id`` responsible for (or the
    assignee of) a record of ``entity``: themselves always, anyone else within the role's
    ``assign`` scope (inside the open tenant scope)."""
    if user_id == principal.user_id:
        return True
    if not 1 <= user_id <= MAX_ID:
        return False
    # The user's own id is the "owner" column: the assign scope covers them or not.
    covered = await records_in_scope(principal, entity, "assign", User.id)
    return bool(await User.exists().where(User.id == user_id, User.is_active.eq(True), covered))


async def assignee_problems(
    principal: Principal, entity: str, user_id: int, *, field: str = "responsible_id"
) -> list[FieldError]:
    """The problem with giving a record of ``entity`` to ``user_id``, if any. A role that may
    not give records to anyone but the user themselves gets 403 naming the right."""
    if await may_assign(principal, entity, user_id):
        return []
    if principal.scope(entity, "assign") in ("none", "own"):
        raise Forbidden(
            f"Your role does not allow making others responsible for {entity}.", permission=f"{entity}.assign"
        )
    return [FieldError(field, "is not an active user you may assign")]
