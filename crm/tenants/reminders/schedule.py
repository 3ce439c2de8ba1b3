"""When a notice may reach a user: their timezone, working hours and quiet hours.

**Quiet hours** are the night, 22:00–08:00 on the user's clock, except inside their working
hours (someone who starts at 07:00 gets reminders from 07:00). A reminder that falls in
quiet hours is moved to the **start of the user's next working period**: the first
working-hours start (``working_hours.start`` on one of ``working_hours.days``) at or after
it. Outside quiet hours a reminder goes out on time, also in the evening and at weekends:
the user put the task there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

QUIET_START = time(22, 0)
QUIET_END = time(8, 0)


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``; UTC when it is unknown (a user row edited by hand)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _clock(value: str, fallback: time) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (AttributeError, ValueError):
        return fallback


def working_start(hours: dict[str, Any]) -> time:
    return _clock(hours.get("start", ""), time(9, 0))


def working_end(hours: dict[str, Any]) -> time:
    return _clock(hours.get("end", ""), time(18, 0))


def working_days(hours: dict[str, Any]) -> set[int]:
    days = {day for day in hours.get("days", []) if isinstance(day, int) and 1 <= day <= 7}
    return days or {1, 2, 3, 4, 5}


def in_working_hours(local: datetime, hours: dict[str, Any]) -> bool:
    return local.isoweekday() in working_days(hours) and working_start(hours) <= local.time() < working_end(hours)


def is_quiet(local: datetime, hours: dict[str, Any]) -> bool:
    night = local.time() >= QUIET_START or local.time() < QUIET_END
    return night and not in_working_hours(local, hours)


def day_start(day: date, zone: ZoneInfo, hours: dict[str, Any]) -> datetime:
    """The instant (UTC) the user's working hours start on the local calendar ``day``."""
    return datetime.combine(day, working_start(hours), tzinfo=zone).astimezone(UTC)


def next_working_start(moment: datetime, zone: ZoneInfo, hours: dict[str, Any]) -> datetime:
    """The first start of working hours at or after ``moment`` (UTC)."""
    today = moment.astimezone(zone).date()
    days = working_days(hours)
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        if day.isoweekday() in days:
            start = day_start(day, zone, hours)
            if start >= moment:
                return start
    raise AssertionError("a week always holds a working day")


def delivery_time(moment: datetime, timezone: str, hours: dict[str, Any]) -> datetime:
    """When a notice due at ``moment`` (UTC) is delivered: then, or, in quiet hours, at the
    start of the next working period."""
    zone = zone_of(timezone)
    if is_quiet(moment.astimezone(zone), hours):
        return next_working_start(moment, zone, hours)
    return moment


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the local calendar ``day`` begins."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
