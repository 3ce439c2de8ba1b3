"""What the notifications API shows and accepts."""

from __future__ import annotations

from datetime import datetime

import msgspec


class NotificationRead(msgspec.Struct, kw_only=True):
    id: int
    kind: str  # task_reminder | digest | birthday
    title: str
    body: str
    entity: str | None  # task | client | user
    entity_id: int | None
    link: str | None  # the API path of the record it is about
    created_at: datetime
    read_at: datetime | None


class NotificationPage(msgspec.Struct, kw_only=True):
    items: list[NotificationRead]
    next_cursor: str | None
    unread: int  # all the caller's unread notifications, not only this page's


class MarkedRead(msgspec.Struct, kw_only=True):
    marked: int


class NotificationSettings(msgspec.Struct, kw_only=True):
    # Minutes before a task's due time, for tasks that set no reminders of their own.
    reminder_minutes: list[int]
    # Besides the console list (always on): "email", "telegram" (falls back to e-mail).
    channels: list[str]


class NotificationSettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reminder_minutes: list[int] | msgspec.UnsetType = msgspec.UNSET
    channels: list[str] | msgspec.UnsetType = msgspec.UNSET
