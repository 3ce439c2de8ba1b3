"""Recurring tasks: RFC 5545 RRULE strings, evaluated in the assignee's local time.

Only one occurrence exists at a time: completing a recurring task creates the next one.
The rule is therefore evaluated from the current task's due time (its DTSTART), in the
assignee's timezone, so "every Monday at 10:00" stays 10:00 local across DST changes.
``COUNT`` cannot work that way (each task would restart the count) and is refused;
``UNTIL`` ends a series.

dateutil scans period by period until a candidate appears — up to the year 9999 — so a
rule that can never occur (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``) costs seconds of CPU.
The parts accepted are the ones tasks need, and the combinations that can be empty are
refused up front; what remains finds a candidate within a few decades of scanning.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

MAX_LENGTH = 500
# Tasks recur hourly at most: a minutely "task" is a timer, not something a person does.
FREQUENCIES = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
PARTS = ("FREQ", "INTERVAL", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYHOUR", "BYMINUTE", "BYSETPOS")
MAX_INTERVAL = 1000
# The next occurrence is looked for within this span; beyond it the series has ended.
HORIZON = timedelta(days=3660)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February as in leap years
_WEEKDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_RULE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class InvalidRule(ValueError):
    """The text is not an RRULE this product accepts; the message says why."""


def parse_rule(text: str) -> str:
    """The rule in canonical form (upper case, no ``RRULE:`` prefix), or InvalidRule."""
    rule = text.strip().upper()
    rule = rule.removeprefix("RRULE:")
    if not rule or len(rule) > MAX_LENGTH or any(character in rule for character in "\r\n"):
        raise InvalidRule(f"must be one RRULE line of at most {MAX_LENGTH} characters")
    parts = dict(part.partition("=")[::2] for part in rule.split(";") if part)
    try:
        problem = _unsupported(parts)
    except ValueError:
        problem = "has a malformed number"
    if problem is None:
        try:
            try:
                _build(rule, datetime(2000, 1, 1))
            except ValueError:
                _build(rule, datetime(2000, 1, 1, tzinfo=UTC))  # UNTIL given in UTC (…Z)
        except _RULE_ERRORS as error:
            problem = f"is not a valid RRULE: {error}"
    if problem is not None:
        raise InvalidRule(problem)
    return rule


def _unsupported(parts: dict[str, str]) -> str | None:
    """Why the rule is refused before dateutil sees it, or None."""
    if "COUNT" in parts:
        return "COUNT is not supported: each task recurs when it is done; end a series with UNTIL"
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        return f"FREQ must be one of {', '.join(FREQUENCIES)}"
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        return f"{', '.join(unknown)} not supported; use {', '.join(PARTS)}"
    if not 1 <= int(parts.get("INTERVAL", "1")) <= MAX_INTERVAL:
        return f"INTERVAL must be 1 to {MAX_INTERVAL}"
    months = [int(month) for month in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else list(range(1, 13))
    if not all(1 <= month <= 12 for month in months):
        return "BYMONTH must be 1 to 12"
    weekdays = [_WEEKDAY.fullmatch(day) for day in parts.get("BYDAY", "").split(",") if day]
    if any(match is None for match in weekdays):
        return "BYDAY must list MO, TU, WE, TH, FR, SA, SU (with an ordinal for MONTHLY and YEARLY)"
    ordinals = [abs(int(match.group(1))) for match in weekdays if match and match.group(1)]
    if ordinals:
        # The n-th weekday of a month exists for n ≤ 5 (some months), of a year for n ≤ 53.
        limit = 53 if freq == "YEARLY" and "BYMONTH" not in parts else 5
        if freq not in ("MONTHLY", "YEARLY") or "BYMONTHDAY" in parts or not all(1 <= n <= limit for n in ordinals):
            return f"BYDAY ordinals need FREQ=MONTHLY or YEARLY, no BYMONTHDAY, and 1 to {limit} (or minus)"
    if "BYMONTHDAY" in parts:
        longest = max(_DAYS_IN_MONTH[month - 1] for month in months)
        if not any(1 <= abs(int(day)) <= longest for day in parts["BYMONTHDAY"].split(",")):
            return "never occurs: no month in BYMONTH has the days in BYMONTHDAY"
    if "BYSETPOS" in parts:
        # Every month has at least 4 of each weekday: positions up to 4 × that set exist.
        per_month = 4 * len(weekdays) * _count(parts.get("BYHOUR")) * _count(parts.get("BYMINUTE"))
        positions = [abs(int(position)) for position in parts["BYSETPOS"].split(",")]
        if freq != "MONTHLY" or not weekdays or ordinals or "BYMONTHDAY" in parts:
            return "BYSETPOS needs FREQ=MONTHLY with plain BYDAY weekdays (e.g. BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1)"
        if not all(1 <= position <= per_month for position in positions):
            return f"BYSETPOS must be 1 to {per_month} (or minus) for these weekdays"
    return None


def _count(values: str | None) -> int:
    return len(values.split(",")) if values else 1


def next_occurrence(rule: str, due_at: datetime, timezone: str) -> datetime | None:
    """The first occurrence strictly after ``due_at`` (aware) in UTC, or None when the
    series has ended (UNTIL passed, or nothing within the horizon)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = due_at.astimezone(zone)
    # Wall-clock evaluation: a naive DTSTART in local time, localised afterwards.
    try:
        naive = local.replace(tzinfo=None)
        found = _build(rule, naive).after(naive)
        if found is not None:
            found = found.replace(tzinfo=zone)
    except ValueError:
        # RFC 5545 wants UNTIL in UTC (…Z) for zoned starts; dateutil then needs an aware start.
        found = _build(rule, local).after(local)
    return None if found is None else found.astimezone(UTC)


def _build(rule: str, start: datetime) -> rrule:
    built = rrulestr(rule, dtstart=start)
    if not isinstance(built, rrule):
        raise ValueError("expected a single RRULE")
    until: datetime | None = built._until
    cap = start + HORIZON
    if until is None or until > cap:
        built = built.replace(until=cap)
    return built
