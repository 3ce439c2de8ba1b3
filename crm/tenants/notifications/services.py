"""The caller's notifications: the list, the unread count, marking read; their settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID, ListSpec, Ordering, page_query
from crm.tenants.audit.services import record_audit
from crm.tenants.notifications.channels import ENTITY_PATHS, USER_CHANNELS
from crm.tenants.notifications.schemas import NotificationRead, NotificationSettings, NotificationSettingsUpdate
from crm.tenants.notifications.tables import Notification
from crm.tenants.users.tables import User

NOTIFICATION_LIST = ListSpec(
    sortable={"id": Notification.id, "created_at": Notification.created_at}, default_sort="-id"
)
COLUMNS = (
    Notification.id,
    Notification.kind,
    Notification.title,
    Notification.body,
    Notification.entity,
    Notification.entity_id,
    Notification.created_at,
    Notification.read_at,
)
MAX_REMINDERS = 10
MAX_REMINDER_MINUTES = 40_320  # four weeks, as on tasks


def notification_read(row: dict[str, Any]) -> NotificationRead:
    link = None
    if row["entity"] in ENTITY_PATHS and row["entity_id"] is not None:
        link = f"/api/v1/{ENTITY_PATHS[row['entity']]}/{row['entity_id']}"
    return NotificationRead(**row, link=link)


async def notification_page(
    principal: Principal,
    ordering: Ordering,
    cursor: str | None,
    limit: int,
    *,
    unread: bool | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """One page of the caller's own notifications (never anyone else's)."""
    query = Notification.select(*COLUMNS).where(Notification.user_id == principal.user_id)
    if unread is not None:
        query = query.where(Notification.read_at.is_null() if unread else Notification.read_at.is_not_null())
    if kind is not None:
        query = query.where(Notification.kind == kind)
    rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit)
    return rows


async def unread_count(principal: Principal) -> int:
    count: int = await Notification.count().where(
        Notification.user_id == principal.user_id, Notification.read_at.is_null()
    )
    return count


async def mark_read(principal: Principal, notification_id: int) -> dict[str, Any]:
    """Mark one of the caller's notifications read (reading it again keeps the first time)."""
    mine = (Notification.id == notification_id) & (Notification.user_id == principal.user_id)
    if not 1 <= notification_id <= MAX_ID or not await Notification.exists().where(mine):
        raise NotFound(f"There is no notification {notification_id} of yours.")
    await Notification.update({Notification.read_at: datetime.now(UTC)}).where(mine, Notification.read_at.is_null())
    row: dict[str, Any] | None = await Notification.select(*COLUMNS).where(mine).first()
    assert row is not None
    return row


async def mark_all_read(principal: Principal) -> int:
    """Mark every unread notification of the caller read; how many."""
    rows = (
        await Notification.update({Notification.read_at: datetime.now(UTC)})
        .where(Notification.user_id == principal.user_id, Notification.read_at.is_null())
        .returning(Notification.id)
    )
    return len(rows)


async def notification_settings(principal: Principal) -> NotificationSettings:
    row = await User.select(User.reminder_minutes, User.notify_channels).where(User.id == principal.user_id).first()
    if row is None:
        raise NotFound("Your user no longer exists.")
    return NotificationSettings(reminder_minutes=row["reminder_minutes"], channels=row["notify_channels"])


async def update_notification_settings(
    principal: Principal, data: NotificationSettingsUpdate, *, origin: Origin
) -> NotificationSettings:
    """Change the caller's default reminder offsets and channels; audited as ``user.updated``."""
    current = await notification_settings(principal)
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if data.reminder_minutes is not msgspec.UNSET:
        for index, minutes in enumerate(data.reminder_minutes):
            if not 0 <= minutes <= MAX_REMINDER_MINUTES:
                errors.append(FieldError(f"reminder_minutes.{index}", f"must be 0 to {MAX_REMINDER_MINUTES} minutes"))
        values["reminder_minutes"] = sorted(set(data.reminder_minutes))
        if len(values["reminder_minutes"]) > MAX_REMINDERS:
            errors.append(FieldError("reminder_minutes", f"at most {MAX_REMINDERS} reminders"))
    if data.channels is not msgspec.UNSET:
        for index, name in enumerate(data.channels):
            if name not in USER_CHANNELS:
                errors.append(FieldError(f"channels.{index}", f"must be one of {', '.join(USER_CHANNELS)}"))
        values["channels"] = list(dict.fromkeys(data.channels))
    if errors:
        raise InvalidInput("The notification settings have invalid fields.", errors=errors)
    before = {"reminder_minutes": current.reminder_minutes, "channels": current.channels}
    diff = {field: (before[field], value) for field, value in values.items() if before[field] != value}
    if diff:
        columns = {"reminder_minutes": User.reminder_minutes, "channels": User.notify_channels}
        await User.update({columns[field]: after for field, (_, after) in diff.items()}).where(
            User.id == principal.user_id
        )
        await record_audit(
            origin.user(principal), "user.updated", entity="user", entity_id=principal.user_id, changes=diff
        )
    merged = {**before, **values}
    return NotificationSettings(reminder_minutes=merged["reminder_minutes"], channels=merged["channels"])
