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
from crm.tenants.users.services import department_subtree

EVERYTHING = WhereRaw("TRUE")
NOTHING = WhereRaw("FALSE")


async def records_in_scope(principal: Principal, entity: str, action: str, *owners: Column) -> Combinable:
    """SQL condition for the rows of ``entity`` that ``principal`` may ``action``.

    ``owners`` are the user-id columns that make a row someone's (responsible, author)."""
    scope = principal.scope(entity, action)
    if scope == "all":
        return EVERYTHING
    if scope == "none" or not owners:
        return NOTHING
    condition: Combinable = _any_owner_is(owners, principal.user_id)
    if scope == "department" and principal.department_id is not None:
        departments = await department_subtree(principal.department_id)
        for owner in owners:
            # One sub-select per owner column; PostgreSQL turns it into a hashed semi-join.
            condition = condition | WhereRaw(
                f'"{owner._meta.db_column_name}" IN (SELECT id FROM users WHERE department_id = ANY({{}}))',
                departments,
            )
    return condition


def _any_owner_is(owners: tuple[Column, ...], user_id: int) -> Combinable:
    condition: Combinable = owners[0] == user_id
    for owner in owners[1:]:
        condition = condition | (owner == user_id)
    return condition
