"""What the API shows of users and departments (never the password hash)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class WorkingHours(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """When reminders may reach the user: ISO weekdays (1 = Monday) and local times "HH:MM"."""

    days: list[int]
    start: str
    end: str


class UserRead(msgspec.Struct, kw_only=True):
    id: int
    email: str
    name: str
    locale: str
    timezone: str
    # The main role, and every role (the main one first): rights are the widest any grants.
    role: str
    roles: list[str]
    working_hours: WorkingHours
    department_id: int | None
    # Told to colleagues in their morning digest on the day (crm/tenants/reminders).
    birthday: date | None
    is_active: bool
    created_at: datetime


class UserPage(msgspec.Struct, kw_only=True):
    items: list[UserRead]
    next_cursor: str | None


class ProfileUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/me: what users change about themselves. Left out: unchanged;
    ``birthday: null`` removes the birthday."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    working_hours: WorkingHours | msgspec.UnsetType = msgspec.UNSET
    birthday: date | msgspec.UnsetType | None = msgspec.UNSET


class UserUpdate(ProfileUpdate, kw_only=True, forbid_unknown_fields=True):
    """PATCH by an admin: the profile plus department and roles. ``department_id: null``
    removes the department; ``role`` changes the main role, ``roles`` sets them all (the
    first is the main one)."""

    department_id: int | msgspec.UnsetType | None = msgspec.UNSET
    role: str | msgspec.UnsetType = msgspec.UNSET
    roles: list[str] | msgspec.UnsetType = msgspec.UNSET


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


class DepartmentUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: rename and/or move. Left out: unchanged; ``parent_id: null`` moves it to the top."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    parent_id: int | msgspec.UnsetType | None = msgspec.UNSET
