"""Timer handlers: due task reminders, a snoozed one, the morning digest (with birthdays).

Exactly once, each way: a company's due **task reminders** are deleted from
``reminders_queue`` in the transaction that stores their notifications (runs racing skip
each other's rows); a **snooze**, a **digest** and a **birthday** notice claim a key in
``reminders_sent`` (``INSERT … ON CONFLICT DO NOTHING``) in the transaction that notifies,
so a timer that runs twice, or two runs racing, notify once — the second waits on the
first's key and finds it taken. A stale reminder (the task moved, was reassigned, done,
deleted; the offset was removed) is dropped.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.platform.timers import Timer, timer_batch_handler, timer_handler
from crm.tenants.notifications.channels import Notice, notify, notify_many
from crm.tenants.notifications.recipients import (
    RECIPIENT_COLUMNS,
    RECIPIENT_JSON,
    Recipient,
    load_recipient,
    recipient_from_json,
    recipient_of,
)
from crm.tenants.notifications.texts import birthday_notice, digest_notice, reminder_notice
from crm.tenants.reminders.schedule import local_midnight, working_days, zone_of
from crm.tenants.reminders.services import (
    DIGEST,
    REMINDER_DUE,
    REMINDER_SNOOZED,
    effective_offsets,
    ensure_digest,
    first_digest_day,
    schedule_digest,
)
from crm.tenants.tasks.tables import Task
from crm.tenants.users.tables import User

# Users whose digest chain a running digest starts, at most, per run.
SEED_BATCH = 200


async def claim_once(kind: str, subject_id: int, user_id: int, offset: int, version: datetime) -> bool:
    """Record that this notice is given; False when it was given already."""
    claimed = await scope_connection().fetchval(
        'INSERT INTO "reminders_sent" ("kind", "subject_id", "user_id", "offset_minutes", "version")'
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
        kind,
        subject_id,
        user_id,
        offset,
        version,
    )
    return claimed is not None


_TASK_COLUMNS = (Task.id, Task.title, Task.status, Task.due_at, Task.assignee_id, Task.remind_before_minutes)


async def _task(task_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = await Task.select(*_TASK_COLUMNS).where(Task.id == task_id).first()
    return row


def _when(payload: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(payload["at"]) if "at" in payload else None


# The company's reminders due by $1 (or by now: one queued while its timer ran), taken off
# the queue: the deletion commits with the notifications, and runs racing skip each
# other's rows. A bounded chunk per transaction.
_TAKE_DUE = f"""
WITH due AS (
    DELETE FROM "reminders_queue" WHERE "id" IN (
        SELECT "id" FROM "reminders_queue" WHERE "remind_at" <= greatest($1, now())
        ORDER BY "remind_at" LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING "task_id", "user_id", "offset_minutes", "version", "remind_at"
)
SELECT due.*, t."id", t."title", t."status", t."due_at", t."assignee_id", t."remind_before_minutes",
       CASE WHEN u."id" IS NOT NULL THEN {RECIPIENT_JSON}::text END AS "user"
FROM due LEFT JOIN "tasks" t ON t."id" = due."task_id" LEFT JOIN "users" u ON u."id" = due."user_id"
"""
# Reminders one transaction delivers at most; more are delivered by the next chunk.
CHUNK = 2_000


@timer_batch_handler(REMINDER_DUE)
async def deliver_due_reminders(tenant: TenantRef, timers: Sequence[Timer]) -> None:
    """Deliver the company's queued task reminders that are due (by the latest of these
    timers' moments, or the database's now): per chunk, one transaction — the rows taken
    off the queue with their tasks and users in one statement, the console rows stored
    with one."""
    moments = [timer.due_at for timer in timers if timer.due_at is not None]
    until = max(moments) if moments else datetime.now(UTC)
    while await _deliver_chunk(tenant, until) >= CHUNK:
        pass


async def _deliver_chunk(tenant: TenantRef, until: datetime) -> int:
    # A crash may forget this transaction as a whole — the reminders go back in the queue
    # with their notifications and queued mail undone, and come again — so its commit need
    # not wait for the WAL flush (a burst of 1,000 companies is 1,000 commits).
    async with tenant_scope(tenant, durable=False):
        due = await scope_connection().fetch(_TAKE_DUE, until, CHUNK)
        if not due:
            return 0
        users: dict[int, Recipient] = {}
        deliveries: list[tuple[Recipient, Notice]] = []
        for reminder in due:
            if reminder["id"] is None or reminder["user"] is None:
                continue  # the task or the user was deleted
            task = dict(reminder)
            if reminder["user_id"] not in users:
                users[reminder["user_id"]] = recipient_from_json(reminder["user"])
            user = users[reminder["user_id"]]
            if not _still_wanted(task, user, reminder["offset_minutes"], reminder["version"]):
                continue
            notice = reminder_notice(user, task)
            notice.scheduled_for = reminder["remind_at"]
            deliveries.append((user, notice))
        await notify_many(tenant, deliveries)
        return len(due)


def _still_wanted(task: dict[str, Any], user: Recipient, offset: int, version: datetime) -> bool:
    """Whether a queued reminder still stands: the task is open, due when it was, assigned
    to the same active user, and the offset is still one of its reminders."""
    return (
        task["status"] == "open"
        and task["due_at"] == version
        and task["assignee_id"] == user.id
        and user.is_active
        and offset in effective_offsets(task, user)
    )


@timer_handler(REMINDER_SNOOZED)
async def deliver_snoozed_reminder(tenant: TenantRef, timer: Timer) -> None:
    payload = timer.payload
    async with tenant_scope(tenant):
        task = await _task(payload["task_id"])
        if task is None or task["status"] != "open":
            return
        user = await load_recipient(payload["user_id"])
        at = _when(payload)
        if user is None or not user.is_active or at is None:
            return
        if not await claim_once("snooze", task["id"], user.id, 0, at):
            return
        notice = reminder_notice(user, task, snoozed=True)
        notice.scheduled_for = at
        await notify(tenant, user, notice)


@timer_handler(DIGEST)
async def send_morning_digest(tenant: TenantRef, timer: Timer) -> None:
    """The user's morning: today's tasks and the overdue ones (on working days, when there
    are any), birthdays (every day), the next day's digest timer, and digest timers for
    colleagues who have none yet."""
    payload = timer.payload
    day = date.fromisoformat(payload["day"])
    async with tenant_scope(tenant):
        user = await load_recipient(payload["user_id"])
        if user is None:
            return
        if not user.is_active:
            # The chain ends; reactivation restarts it through ensure_digest.
            await User.update({User.digest_next_on: None}).where(User.id == user.id)
            return
        zone = zone_of(user.timezone)
        start = local_midnight(day, zone)
        if not await claim_once("digest", 0, user.id, 0, start):
            return
        now = datetime.now(UTC)
        await schedule_digest(user, first_digest_day(user, day + timedelta(days=1), now))
        if day.isoweekday() in working_days(user.working_hours):
            notice = await _digest(user, day, start, local_midnight(day + timedelta(days=1), zone))
            if notice is not None:
                notice.scheduled_for = _when(payload)
                await notify(tenant, user, notice)
        await _birthdays(tenant, user, day, start)
        await _seed_digests(user.id, now)


async def _digest(user: Recipient, day: date, start: datetime, end: datetime) -> Notice | None:
    """Open tasks due on the local ``day`` and open ones due before it; None when neither."""
    columns = (Task.id, Task.title, Task.due_at)
    mine = (Task.assignee_id == user.id) & (Task.status == "open")
    today = await Task.select(*columns).where(mine, Task.due_at >= start, Task.due_at < end).order_by(Task.due_at)
    overdue = await Task.select(*columns).where(mine, Task.due_at < start).order_by(Task.due_at)
    if not today and not overdue:
        return None
    return digest_notice(user, day, today, overdue)


def _birthday_days(day: date) -> list[int]:
    """Days of the month whose birthdays fall on ``day``: 29 February is kept on the 28th
    in other years."""
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        return [28, 29]
    return [day.day]


async def _birthdays(tenant: TenantRef, user: Recipient, day: date, version: datetime) -> None:
    """Tell ``user`` of today's birthdays: of the people among their clients (the
    responsible user hears of them) and, for admins, of their colleagues."""
    connection = scope_connection()
    days = _birthday_days(day)
    people = await connection.fetch(
        'SELECT "id", "name" FROM "clients" WHERE "responsible_id" = $1 AND "birthday" IS NOT NULL'
        ' AND extract(month FROM "birthday") = $2 AND extract(day FROM "birthday") = ANY($3::int[])',
        user.id,
        day.month,
        days,
    )
    found = [("client", row["id"], row["name"]) for row in people]
    if user.is_admin:
        colleagues = await connection.fetch(
            'SELECT "id", "name" FROM "users" WHERE "is_active" AND "id" <> $1 AND "birthday" IS NOT NULL'
            ' AND extract(month FROM "birthday") = $2 AND extract(day FROM "birthday") = ANY($3::int[])',
            user.id,
            day.month,
            days,
        )
        found += [("user", row["id"], row["name"]) for row in colleagues]
    for entity, entity_id, name in found:
        # Keyed by the day, which carries the year: once per year.
        if await claim_once(f"birthday_{entity}", entity_id, user.id, 0, version):
            await notify(tenant, user, birthday_notice(user, name=name, entity=entity, entity_id=entity_id))


async def _seed_digests(running_for: int, now: datetime) -> None:
    """Start digest chains for active colleagues who have none pending (new users)."""
    yesterday = (now - timedelta(days=1)).date()
    rows = (
        await User.select(*RECIPIENT_COLUMNS)
        .where(User.is_active.eq(True), User.id != running_for)
        .where(User.digest_next_on.is_null() | (User.digest_next_on < yesterday))
        .limit(SEED_BATCH)
        .output(load_json=True)
    )
    for row in rows:
        await ensure_digest(recipient_of(row), now=now)
