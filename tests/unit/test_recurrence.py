"""Recurring task rules: what is accepted, the next occurrence in local time, and rules
that could never occur are refused quickly instead of scanning to the year 9999."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from crm.tenants.tasks.recurrence import InvalidRule, next_occurrence, parse_rule


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("FREQ=WEEKLY;BYDAY=MO", "FREQ=WEEKLY;BYDAY=MO"),
        ("rrule:freq=daily;interval=2", "FREQ=DAILY;INTERVAL=2"),
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "FREQ=MONTHLY;BYDAY=-1FR"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29"),
        ("FREQ=WEEKLY;UNTIL=20301231T000000Z", "FREQ=WEEKLY;UNTIL=20301231T000000Z"),
        ("FREQ=DAILY;UNTIL=20301231", "FREQ=DAILY;UNTIL=20301231"),
        ("FREQ=DAILY;BYHOUR=9,18;BYMINUTE=30", "FREQ=DAILY;BYHOUR=9,18;BYMINUTE=30"),
    ],
)
def test_accepted_rules(text: str, canonical: str) -> None:
    assert parse_rule(text) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "one RRULE line"),
        ("FREQ=DAILY\nFREQ=WEEKLY", "one RRULE line"),
        ("FREQ=DAILY;COUNT=5", "COUNT"),
        ("FREQ=MINUTELY", "FREQ must be"),
        ("FREQ=FORTNIGHTLY", "FREQ must be"),
        ("BYDAY=MO", "FREQ must be"),
        ("FREQ=DAILY;BYWEEKNO=3", "BYWEEKNO not supported"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=two", "malformed"),
        ("FREQ=DAILY;BYHOUR=25", "not a valid RRULE"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY must list"),
        ("FREQ=WEEKLY;BYDAY=1MO", "ordinals"),
        ("FREQ=MONTHLY;BYDAY=6MO", "ordinals"),
        ("FREQ=MONTHLY;BYDAY=1MO;BYMONTHDAY=15", "ordinals"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("FREQ=HOURLY;BYMONTH=4,6;BYMONTHDAY=31,-31", "never occurs"),
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH"),
        ("FREQ=DAILY;BYSETPOS=2", "BYSETPOS needs"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "BYSETPOS must be"),
    ],
)
def test_refused_rules_say_why_and_cost_nothing(text: str, reason: str) -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidRule, match=reason):
        parse_rule(text)
    assert time.perf_counter() - started < 0.2


def test_next_occurrence_keeps_the_local_time_across_dst() -> None:
    # Monday 10:00 in Berlin, winter time; the next Monday is in summer time.
    due = datetime(2030, 3, 25, 9, 0, tzinfo=UTC)
    following = next_occurrence("FREQ=WEEKLY;BYDAY=MO", due, "Europe/Berlin")
    assert following == datetime(2030, 4, 1, 8, 0, tzinfo=UTC)


def test_next_occurrence_uses_the_assignees_calendar() -> None:
    # 23:30 UTC on Sunday is already Monday 09:30 in Vladivostok: "every weekday" goes to Tuesday there.
    due = datetime(2030, 3, 24, 23, 30, tzinfo=UTC)
    following = next_occurrence("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", due, "Asia/Vladivostok")
    assert following == datetime(2030, 3, 25, 23, 30, tzinfo=UTC)
    assert next_occurrence("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", due, "UTC") == datetime(
        2030, 3, 29, 23, 30, tzinfo=UTC
    )


def test_a_series_ends_with_until() -> None:
    due = datetime(2030, 3, 25, 9, 0, tzinfo=UTC)
    assert next_occurrence("FREQ=DAILY;UNTIL=20300326T090000Z", due, "UTC") == datetime(2030, 3, 26, 9, tzinfo=UTC)
    assert next_occurrence("FREQ=DAILY;UNTIL=20300325T235959Z", due, "UTC") is None
    assert next_occurrence("FREQ=DAILY;UNTIL=20300325", due, "Europe/Moscow") is None


def test_rare_but_possible_rules_answer_quickly() -> None:
    due = datetime(2030, 3, 25, 9, 0, tzinfo=UTC)
    for rule in ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29"):
        started = time.perf_counter()
        next_occurrence(parse_rule(rule), due, "Europe/Moscow")
        assert time.perf_counter() - started < 1.0, rule
