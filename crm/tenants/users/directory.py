"""What an admin sees about users beyond their profile: whether the invitation is still
pending, when they were last seen, whether Telegram is linked — and the roles and
departments to choose from when assigning them.

Facts are read only for users the caller already found within their role's scope (the
ids come from :func:`crm.tenants.users.reads.user_page` or ``user_in_scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.platform.auth import Principal
from crm.platform.errors import Forbidden
from crm.platform.tables import TelegramLink
from crm.platform.tenancy import scope_connection
from crm.tenants.configuration.tables import Role
from crm.tenants.users.departments import DepartmentNode, ordered_tree

# Last seen: the latest sign-in or use of any of the user's sessions and tokens (the
# access_tokens_user_id index keeps it one short probe per user).
_FACTS = """
SELECT u.id,
       (SELECT max(greatest(t.created_at, t.last_used_at)) FROM access_tokens t WHERE t.user_id = u.id) AS last_seen,
       (SELECT max(i.expires_at) FROM invitations i WHERE i.user_id = u.id AND i.used_at IS NULL) AS invited_until
FROM users u WHERE u.id = ANY($1::int[])
"""


@dataclass(frozen=True)
class UserFacts:
    last_seen: datetime | None = None
    # An invitation not yet accepted: when its link stops working (maybe already past).
    invited_until: datetime | None = None
    # "linked", "blocked" (the user blocked the bot) or None (no Telegram account linked).
    telegram: str | None = None


async def user_facts(tenant_id: str, user_ids: Sequence[int], *, with_telegram: bool) -> dict[int, UserFacts]:
    """Facts about ``user_ids`` (inside the open tenant scope). Telegram links live in the
    platform schema and are read with a query of their own: no join crosses from the
    tenant's schema into the platform's (DESIGN.md §2)."""
    if not user_ids:
        return {}
    rows = await scope_connection().fetch(_FACTS, list(user_ids))
    telegram: dict[int, str] = {}
    if with_telegram:
        links = await TelegramLink.select(TelegramLink.user_id, TelegramLink.blocked_at).where(
            TelegramLink.tenant_id == tenant_id, TelegramLink.user_id.is_in(list(user_ids))
        )
        telegram = {link["user_id"]: "blocked" if link["blocked_at"] else "linked" for link in links}
    return {
        row["id"]: UserFacts(
            last_seen=row["last_seen"], invited_until=row["invited_until"], telegram=telegram.get(row["id"])
        )
        for row in rows
    }


def _may_assign_users(principal: Principal) -> None:
    """Choosing a role or department for a user is part of inviting or changing users; the
    choices' names come with that right (what each role grants stays behind roles.read)."""
    if principal.scope("users", "create") == "none" and principal.scope("users", "update") == "none":
        raise Forbidden("Your role does not allow inviting or changing users.", permission="users.update")


async def role_choices(principal: Principal) -> list[dict[str, Any]]:
    """Keys and names of the roles, to assign one (inside the open tenant scope)."""
    _may_assign_users(principal)
    rows: list[dict[str, Any]] = await Role.select(Role.key, Role.names).output(load_json=True).order_by(Role.id)
    return rows


async def department_choices(principal: Principal) -> list[DepartmentNode]:
    """The department tree, to put a user in a department (inside the open tenant scope)."""
    _may_assign_users(principal)
    return await ordered_tree()
