"""The SQL condition that turns a role's scope into "which records may this user touch".

Every list and lookup of owned records (clients, deals, activities, tasks, …) adds this
condition to its query, so rows the user may not see are never loaded. ``own`` means the
user is the record's responsible (or its author); ``department`` means the responsible
(or author) works in the user's department or a department below it.
"""

from __future__ import annotations

from piccolo.columns import Column
from piccolo.columns.combination import Combinable, WhereRaw

from crm.platform.auth import Principal

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


def _any_owner_is(owners: tuple[Column, ...], user_id: int) -> Combinable:
    condition: Combinable = owners[0] == user_id
    for owner in owners[1:]:
        condition = condition | (owner == user_id)
    return condition
