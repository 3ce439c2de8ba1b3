"""What the API shows of users (never the password hash)."""

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
    is_active: bool
    created_at: datetime


class UserPage(msgspec.Struct, kw_only=True):
    items: list[UserRead]
    next_cursor: str | None
