"""Snooze: remind me of this task again in 15 minutes, in an hour, or tomorrow morning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.tenancy import scope_connection
from crm.platform.timers import schedule
from crm.tenants.audit.services import record_audit
from crm.tenants.notifications.recipients import load_recipient
from crm.tenants.reminders.schedule import day_start, delivery_time, zone_of
from crm.tenants.reminders.services import REMINDER_SNOOZED, scoped_tenant
from crm.tenants.tasks.services import load_task, tasks_in_scope

SNOOZE_CHOICES = ("15m", "1h", "tomorrow")


async def snooze_task(principal: Principal, task_id: int, choice: str, *, origin: Origin) -> datetime:
    """Schedule a reminder of an open task the caller may read, for the caller; when it comes.

    ``15m`` and ``1h`` count from now (moved out of quiet hours like any reminder);
    ``tomorrow`` is tomorrow's start of the caller's working hours on their clock."""
    if choice not in SNOOZE_CHOICES:
        raise InvalidInput("Cannot snooze like that.", errors=[FieldError("for", "must be 15m, 1h or tomorrow")])
    try:
        task = await load_task(task_id, await tasks_in_scope(principal, "read"))
    except NotFound:
        raise NotFound(f"There is no task {task_id} you may see.") from None
    if task["status"] != "open":
        raise Conflict(
            f"Task {task_id} is {task['status']}; only open tasks are reminded of.", task_status=task["status"]
        )
    user = await load_recipient(principal.user_id)
    if user is None:
        raise NotFound("Your user no longer exists.")
    now = datetime.now(UTC)
    if choice == "tomorrow":
        zone = zone_of(user.timezone)
        at = day_start(now.astimezone(zone).date() + timedelta(days=1), zone, user.working_hours)
    else:
        at = delivery_time(now + timedelta(minutes=15 if choice == "15m" else 60), user.timezone, user.working_hours)
    payload = {"task_id": task_id, "user_id": user.id, "at": at.isoformat()}
    await schedule(scope_connection(), REMINDER_SNOOZED, scoped_tenant().id, payload, due_at=at)
    await record_audit(
        origin.user(principal),
        "task.snoozed",
        entity="task",
        entity_id=task_id,
        changes={"remind_at": (None, at.isoformat()), "snooze": (None, choice)},
    )
    return at
