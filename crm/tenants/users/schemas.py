"""What the API shows of users and departments (never the password hash)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class UserRead(msgspec.Struct, kw_only=True):
    id: int
    email: str
    name: str
    locale: str
    timezone: str
    role: str
    department_id: int | None
    is_active: bool
    created_at: datetime


class UserPage(msgspec.Struct, kw_only=True):
    items: list[UserRead]
    next_cursor: str | None


class UserUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; ``department_id: null`` removes the department."""

    department_id: int | msgspec.UnsetType | None = msgspec.UNSET
    role: str | msgspec.UnsetType = msgspec.UNSET


class DepartmentRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    parent_id: int | None


class DepartmentList(msgspec.Struct, kw_only=True):
    items: list[DepartmentRead]
    next_cursor: str | None = None


class DepartmentCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    parent_id: int | None = None
