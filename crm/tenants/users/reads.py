"""Users as the API shows them (never the password hash or the two-factor secret)."""

from __future__ import annotations

from typing import Any

import msgspec

from crm.tenants.users.schemas import UserRead
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


def user_read(row: dict[str, Any]) -> UserRead:
    """A row selected with READ_COLUMNS (JSON loaded) as the API shows it."""
    fields = dict(row)
    extra = fields.pop("extra_roles") or []
    fields["roles"] = [fields["role"], *(role for role in extra if role != fields["role"])]
    return msgspec.convert(fields, UserRead)
