"""The edition's quotas (users, clients): checked where records are added, in the same
transaction, so a company cannot add past its limit — it upgrades instead (402)."""

from __future__ import annotations

from crm.platform.auth import Principal
from crm.platform.editions import shipped_editions
from crm.platform.errors import LimitReached
from crm.platform.tenancy import scope_connection

# What counts against each quota. Users: active ones and those invited and not yet joined
# (a deactivated user frees a seat). Counting stops just past the limit: cheap at any size.
_USED = {
    "users": "SELECT count(*) FROM (SELECT 1 FROM users WHERE is_active OR EXISTS (SELECT 1 FROM invitations i"
    " WHERE i.user_id = users.id AND i.used_at IS NULL AND i.expires_at > now()) LIMIT $1) counted",
    "clients": "SELECT count(*) FROM (SELECT 1 FROM clients LIMIT $1) counted",
}


COUNTED = tuple(_USED)


async def quota_used(quota: str, *, up_to: int | None = None) -> int:
    """How much of ``quota`` (users, clients) the tenant whose scope is open uses, counted
    no further than ``up_to`` (None: all of it, for the usage meter of the plan page)."""
    used: int = await scope_connection().fetchval(_USED[quota], up_to)  # LIMIT NULL: no limit
    return used


async def room_left(principal: Principal, quota: str) -> int | None:
    """How many more the edition allows (None: no limit), inside the open tenant scope."""
    limit: int | None = getattr(shipped_editions()[principal.tenant.edition].limits, quota)
    if limit is None:
        return None
    used = await quota_used(quota, up_to=limit + 1)
    return max(0, limit - used)


async def ensure_room(principal: Principal, quota: str, wanted: int = 1) -> None:
    """Raise 402 naming the quota unless ``wanted`` more fit in the edition's limit."""
    room = await room_left(principal, quota)
    if room is not None and room < wanted:
        limit = getattr(shipped_editions()[principal.tenant.edition].limits, quota)
        raise LimitReached(
            f"The {principal.tenant.edition!r} edition allows {limit} {quota}; upgrade for more.",
            quota=quota,
            limit=limit,
            edition=principal.tenant.edition,
        )
