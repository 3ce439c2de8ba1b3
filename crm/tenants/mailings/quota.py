"""The edition's monthly mailing limit, counted by the company's calendar month.

A company in Moscow whose month turns at 00:00 Moscow time (21:00 UTC the day before)
sees its allowance renew then, not three hours later at the UTC month's turn. The month
is the one of the company's time zone (company settings ``timezone``) at the moment of
the check; letters count against the month their mailing started in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from crm.platform.editions import shipped_editions
from crm.platform.tenancy import scope_connection
from crm.tenants.configuration.settings import company_profile
from crm.tenants.reminders.schedule import zone_of


def monthly_limit(edition: str) -> int | None:
    """Letters a month the edition allows (None: no limit)."""
    limit: int | None = shipped_editions()[edition].limits.mailings_per_month
    return limit


def month_bounds(moment: datetime, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month holding ``moment`` on the clock of ``timezone``.
    The bounds carry the zone itself (not a fixed offset), so each has its own UTC offset."""
    start = moment.astimezone(zone_of(timezone)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


async def letters_this_month(now: datetime | None = None) -> int:
    """Letters of the mailings started in the company's current month (inside the tenant scope)."""
    timezone = (await company_profile()).get("timezone") or "UTC"
    start, end = month_bounds(now or datetime.now(UTC), timezone)
    used: int = await scope_connection().fetchval(
        "SELECT coalesce(sum(total), 0) FROM mailings WHERE started_at >= $1 AND started_at < $2", start, end
    )
    return used
