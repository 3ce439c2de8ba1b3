"""Who a notification goes to: the user's language, clock, working hours and channels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from crm.tenants.users.tables import User

DEFAULT_HOURS: dict[str, Any] = {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}


@dataclass(frozen=True)
class Recipient:
    id: int
    email: str
    name: str
    locale: str  # ru | en: the language of every text the user gets
    timezone: str
    working_hours: dict[str, Any]
    reminder_minutes: list[int]  # offsets for tasks that set none
    channels: list[str]  # besides the console list, which every notification reaches
    is_active: bool
    roles: tuple[str, ...]
    digest_next_on: date | None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


RECIPIENT_COLUMNS = (
    User.id,
    User.email,
    User.name,
    User.locale,
    User.timezone,
    User.working_hours,
    User.reminder_minutes,
    User.notify_channels,
    User.is_active,
    User.role,
    User.extra_roles,
    User.digest_next_on,
)


# The same columns as one JSON value of a users row aliased ``u``, for statements that
# bring the recipient along with other rows (see recipient_from_json).
RECIPIENT_JSON = "jsonb_build_object({})".format(
    ", ".join(f"'{column._meta.db_column_name}', u.\"{column._meta.db_column_name}\"" for column in RECIPIENT_COLUMNS)
)


def recipient_from_json(text: str) -> Recipient:
    row = json.loads(text)
    if row["digest_next_on"] is not None:
        row["digest_next_on"] = date.fromisoformat(row["digest_next_on"])
    return recipient_of(row)


def recipient_of(row: dict[str, Any]) -> Recipient:
    hours = row["working_hours"] if isinstance(row["working_hours"], dict) else DEFAULT_HOURS
    return Recipient(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        locale=row["locale"] if row["locale"] in ("ru", "en") else "en",
        timezone=row["timezone"],
        working_hours=hours,
        reminder_minutes=list(row["reminder_minutes"] or []),
        channels=list(row["notify_channels"] or []),
        is_active=row["is_active"],
        roles=(row["role"], *(row["extra_roles"] or [])),
        digest_next_on=row["digest_next_on"],
    )


async def load_recipient(user_id: int) -> Recipient | None:
    """The user (in the open tenant scope), or None when they no longer exist."""
    row = await User.select(*RECIPIENT_COLUMNS).where(User.id == user_id).output(load_json=True).first()
    return recipient_of(row) if row else None
