"""Scheduling reminders and digests as ``platform.timers`` rows, in the caller's transaction.

``reschedule_reminders(task)`` is called by the task services whenever a task is created or
its due time, assignee or offsets change (and when it is reopened). It replaces the task's
rows in ``reminders_queue`` with one per offset still ahead, and makes sure the company
has a ``reminders.due`` timer at each of those moments — one timer per company and
moment, however many reminders fall on it, so a busy minute costs a company one timer
run. A reminder also carries the assignee, the offset and the due time it was made for,
and the run drops one that no longer matches the task (moved, reassigned, done,
cancelled, deleted).

Offsets are the task's ``remind_before_minutes``, or the assignee's
``users.reminder_minutes`` (default 15) when the task sets none.

The **morning digest** is a chain of one ``reminders.digest`` timer per user per day at the
start of their working hours; each run schedules the next day's. ``users.digest_next_on``
holds the local day of the pending one. A new user gets their first digest timer from
:func:`ensure_digest`, called when a task is scheduled for them and, for every active user
of the company without a pending digest, by any digest that runs in their company.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from piccolo.columns.combination import WhereRaw

from crm.platform.tenancy import TenantRef, TenantScopeError, current_tenant, scope_connection
from crm.platform.timers import schedule, schedule_once
from crm.tenants.notifications.recipients import Recipient, load_recipient
from crm.tenants.reminders.schedule import day_start, delivery_time, zone_of
from crm.tenants.users.tables import User

REMINDER_DUE = "reminders.due"
REMINDER_SNOOZED = "reminders.snoozed"
DIGEST = "reminders.digest"


def scoped_tenant() -> TenantRef:
    tenant = current_tenant()
    if tenant is None:
        raise TenantScopeError("no tenant scope is open")
    return tenant


def effective_offsets(task: dict[str, Any], user: Recipient) -> list[int]:
    """The task's own offsets, or the assignee's defaults when it sets none."""
    return list(task["remind_before_minutes"] or user.reminder_minutes)


async def reschedule_reminders(task: dict[str, Any], *, now: datetime | None = None) -> int:
    """Queue a reminder for each offset of ``task`` (a task row) still ahead, in the open
    tenant scope, replacing those queued for it before; how many."""
    connection = scope_connection()
    await connection.execute('DELETE FROM "reminders_queue" WHERE "task_id" = $1', task["id"])
    if task["status"] != "open":
        return 0
    user = await load_recipient(task["assignee_id"])
    if user is None or not user.is_active:
        return 0
    now = now or datetime.now(UTC)
    tenant = scoped_tenant()
    scheduled = 0
    for offset in effective_offsets(task, user):
        at = delivery_time(task["due_at"] - timedelta(minutes=offset), user.timezone, user.working_hours)
        if at < now:
            continue  # that moment has passed; reminding now would be noise
        await connection.execute(
            'INSERT INTO "reminders_queue" ("task_id", "user_id", "offset_minutes", "version", "remind_at")'
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            task["id"],
            user.id,
            offset,
            task["due_at"],  # the version: a task moved since makes this reminder stale
            at,
        )
        await schedule_once(connection, REMINDER_DUE, tenant.id, due_at=at)
        scheduled += 1
    await ensure_digest(user, now=now)
    return scheduled


def first_digest_day(user: Recipient, after: date, now: datetime) -> date:
    """The first local day from ``after`` whose digest time is still ahead of ``now``."""
    zone = zone_of(user.timezone)
    day = max(after, now.astimezone(zone).date())
    while day_start(day, zone, user.working_hours) <= now:
        day += timedelta(days=1)
    return day


async def schedule_digest(user: Recipient, day: date) -> bool:
    """Schedule the user's digest for the local ``day`` unless one for that day or later is
    pending; the conditional update makes two concurrent callers schedule it once."""
    claimed = (
        await User.update({User.digest_next_on: day})
        .where(User.id == user.id, WhereRaw('("digest_next_on" IS NULL OR "digest_next_on" < {})', day))
        .returning(User.id)
    )
    if not claimed:
        return False
    at = day_start(day, zone_of(user.timezone), user.working_hours)
    payload = {"user_id": user.id, "day": day.isoformat(), "at": at.isoformat()}
    await schedule(scope_connection(), DIGEST, scoped_tenant().id, payload, due_at=at)
    return True


async def ensure_digest(user: Recipient, *, now: datetime | None = None) -> bool:
    """Start the user's digest chain when none is pending (a new user, or a broken chain)."""
    now = now or datetime.now(UTC)
    today = now.astimezone(zone_of(user.timezone)).date()
    if not user.is_active or (user.digest_next_on is not None and user.digest_next_on >= today):
        return False
    return await schedule_digest(user, first_digest_day(user, today, now))
