"""Who may be made responsible for a record: yourself always, others with the ``assign`` right.

The ``assign`` scope of the record's entity says whom: ``all`` any active user of the
company, ``department`` active users of the caller's department and the departments
below it, ``own`` (or nothing) only the caller.
"""

from __future__ import annotations

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, Forbidden
from crm.tenants.users.services import department_subtree
from crm.tenants.users.tables import User


async def responsible_problems(
    principal: Principal, entity: str, user_id: int, *, field: str = "responsible_id"
) -> list[FieldError]:
    """Problems with making ``user_id`` responsible for a record of ``entity`` (inside the
    open tenant scope). A role that may not assign to others at all gets 403."""
    if user_id == principal.user_id:
        return []
    scope = principal.scope(entity, "assign")
    if scope in ("none", "own"):
        raise Forbidden(
            f"Your role does not allow making others responsible for {entity}.", permission=f"{entity}.assign"
        )
    query = User.exists().where(User.id == user_id, User.is_active.eq(True))
    if scope == "department":
        if principal.department_id is None:
            return [FieldError(field, "you have no department; you may assign only yourself")]
        query = query.where(User.department_id.is_in(await department_subtree(principal.department_id)))
    if not await query:
        return [FieldError(field, "is not an active user you may assign")]
    return []
