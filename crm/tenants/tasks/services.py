"""Tasks: every change (create, change, complete, reopen, delete) as one service function.

Each function runs inside the caller's open ``tenant_scope`` (one transaction), checks
rights in SQL with ``records_in_scope`` (owners: assignee and author), validates every
field at once and writes one audit row per changed task with field-level before/after.
The API, the bot, processes and workers all call these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from piccolo.columns.combination import Combinable

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.settings import setting
from crm.tenants.deals.tables import Deal
from crm.tenants.reminders.services import reschedule_reminders
from crm.tenants.tasks.recurrence import InvalidRule, next_occurrence, parse_rule
from crm.tenants.tasks.schemas import ChecklistItem, TaskCreate, TaskUpdate
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import may_assign, records_in_scope, row_in_scope
from crm.tenants.users.tables import User

PRIORITIES = ("low", "normal", "high")
MAX_TITLE = 300
MAX_DESCRIPTION = 20_000
MAX_REMINDERS = 10
MAX_REMINDER_MINUTES = 40_320  # four weeks
MAX_CHECKLIST_ITEMS = 100
MAX_CHECKLIST_TEXT = 500

TASK_COLUMNS = (
    Task.id,
    Task.title,
    Task.description,
    Task.task_type,
    Task.assignee_id,
    Task.author_id,
    Task.client_id,
    Task.deal_id,
    Task.due_at,
    Task.remind_before_minutes,
    Task.priority,
    Task.status,
    Task.done_at,
    Task.checklist,
    Task.rrule,
    Task.created_at,
    Task.updated_at,
)
# What a new occurrence of a recurring task copies from the one just done.
RECURRING_FIELDS = (
    "title",
    "description",
    "task_type",
    "assignee_id",
    "author_id",
    "client_id",
    "deal_id",
    "remind_before_minutes",
    "priority",
    "rrule",
)


async def tasks_in_scope(principal: Principal, action: str) -> Combinable:
    """SQL condition for the tasks ``principal`` may ``action``: assignee and author own a task."""
    return await records_in_scope(principal, "tasks", action, Task.assignee_id, Task.author_id)


async def readable_client(principal: Principal, client_id: int) -> dict[str, Any] | None:
    """The client (id, name) if it exists and ``principal`` may read it."""
    if not 1 <= client_id <= MAX_ID:
        return None
    readable = await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)
    row: dict[str, Any] | None = (
        await Client.select(Client.id, Client.name, Client.responsible_id)
        .where(Client.id == client_id, readable)
        .first()
    )
    return row


async def readable_deal(principal: Principal, deal_id: int) -> dict[str, Any] | None:
    """The deal (id, client_id) if it exists and ``principal`` may read it."""
    if not 1 <= deal_id <= MAX_ID:
        return None
    readable = await records_in_scope(principal, "deals", "read", Deal.responsible_id, Deal.author_id)
    row: dict[str, Any] | None = await Deal.select(Deal.id, Deal.client_id).where(Deal.id == deal_id, readable).first()
    return row


async def link_errors(
    principal: Principal, client_id: int | None, deal_id: int | None, *, prefix: str = ""
) -> list[FieldError]:
    """Problems with a client and deal a record is linked to: each must exist and be
    readable by ``principal``, and the deal must belong to the client."""
    errors: list[FieldError] = []
    if client_id is not None and await readable_client(principal, client_id) is None:
        errors.append(FieldError(f"{prefix}client_id", "no such client you may read"))
    if deal_id is not None:
        deal = await readable_deal(principal, deal_id)
        if deal is None:
            errors.append(FieldError(f"{prefix}deal_id", "no such deal you may read"))
        elif client_id is not None and deal["client_id"] != client_id:
            errors.append(FieldError(f"{prefix}deal_id", "belongs to another client"))
    return errors


async def task_type_keys() -> set[str]:
    """The keys of the tenant's task types (setting ``task_types``)."""
    return {item["key"] for item in await setting("task_types", []) if isinstance(item, dict) and "key" in item}


def aware_utc(value: datetime, field: str, errors: list[FieldError]) -> datetime | None:
    """``value`` in UTC, or None after adding an error when it carries no offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(FieldError(field, "must carry a UTC offset, e.g. 2025-03-24T10:00:00+03:00"))
        return None
    return value.astimezone(UTC)


async def user_timezone(user_id: int) -> str:
    row = await User.select(User.timezone).where(User.id == user_id).first()
    return str(row["timezone"]) if row else "UTC"


async def _field_values(
    principal: Principal, given: dict[str, Any], *, prefix: str
) -> tuple[dict[str, Any], list[FieldError]]:
    """Clean the fields present in ``given``; problems are named ``prefix + field``."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []

    def bad(field: str, detail: str) -> None:
        errors.append(FieldError(prefix + field, detail))

    if "title" in given:
        title = given["title"].strip()
        if not 1 <= len(title) <= MAX_TITLE:
            bad("title", f"must be 1 to {MAX_TITLE} characters")
        values["title"] = title
    if "description" in given:
        if len(given["description"]) > MAX_DESCRIPTION:
            bad("description", f"must be at most {MAX_DESCRIPTION} characters")
        values["description"] = given["description"]
    if "due_at" in given:
        values["due_at"] = aware_utc(given["due_at"], prefix + "due_at", errors)
    if "task_type" in given:
        if given["task_type"] is not None and given["task_type"] not in await task_type_keys():
            bad("task_type", "is not one of the company's task types")
        values["task_type"] = given["task_type"]
    if "assignee_id" in given:
        if not await may_assign(principal, "tasks", given["assignee_id"]):
            bad("assignee_id", "no such active user you may assign tasks to")
        values["assignee_id"] = given["assignee_id"]
    if "priority" in given:
        if given["priority"] not in PRIORITIES:
            bad("priority", f"must be one of {', '.join(PRIORITIES)}")
        values["priority"] = given["priority"]
    if "remind_before_minutes" in given:
        offsets = given["remind_before_minutes"]
        for index, minutes in enumerate(offsets):
            if not 0 <= minutes <= MAX_REMINDER_MINUTES:
                bad(f"remind_before_minutes.{index}", f"must be 0 to {MAX_REMINDER_MINUTES} minutes")
        values["remind_before_minutes"] = sorted(set(offsets))
        if len(values["remind_before_minutes"]) > MAX_REMINDERS:
            bad("remind_before_minutes", f"at most {MAX_REMINDERS} reminders")
    if "checklist" in given:
        items: list[ChecklistItem] = given["checklist"]
        if len(items) > MAX_CHECKLIST_ITEMS:
            bad("checklist", f"at most {MAX_CHECKLIST_ITEMS} items")
        for index, item in enumerate(items):
            if not 1 <= len(item.text.strip()) <= MAX_CHECKLIST_TEXT:
                bad(f"checklist.{index}.text", f"must be 1 to {MAX_CHECKLIST_TEXT} characters")
        values["checklist"] = [{"text": item.text.strip(), "done": item.done} for item in items]
    if "rrule" in given:
        values["rrule"] = None
        if given["rrule"] is not None:
            try:
                values["rrule"] = parse_rule(given["rrule"])
            except InvalidRule as problem:
                bad("rrule", str(problem))
    return values, errors


async def _recurrence_errors(values: dict[str, Any], *, prefix: str) -> list[FieldError]:
    """A recurring task must have an occurrence after its due time (UNTIL not yet passed)."""
    if not values.get("rrule") or values.get("due_at") is None:
        return []
    timezone = await user_timezone(values["assignee_id"])
    if next_occurrence(values["rrule"], values["due_at"], timezone) is None:
        return [FieldError(prefix + "rrule", "has no occurrence after due_at")]
    return []


async def validate_new_task(
    principal: Principal, data: TaskCreate, *, prefix: str = "", check_links: bool = True
) -> tuple[dict[str, Any], list[FieldError]]:
    """The column values of a new task from ``data`` and every problem with it.

    ``prefix`` names fields inside a larger body (``next_step.``); ``check_links=False``
    when the caller has already checked the client and deal (an activity's follow-up)."""
    given = {field: getattr(data, field) for field in data.__struct_fields__}
    if given["assignee_id"] is None:
        given["assignee_id"] = principal.user_id
    values, errors = await _field_values(principal, given, prefix=prefix)
    values["client_id"], values["deal_id"] = data.client_id, data.deal_id
    if check_links:
        errors += await link_errors(principal, data.client_id, data.deal_id, prefix=prefix)
    if not errors:
        errors += await _recurrence_errors(values, prefix=prefix)
    return values, errors


async def insert_task(
    principal: Principal | None,
    values: dict[str, Any],
    *,
    origin: Origin,
    author_id: int | None = None,
    extra_audit: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Insert a task from validated ``values`` and audit ``task.created``; the new row.

    ``principal`` is the acting user (None for the system, e.g. a process)."""
    author = author_id if author_id is not None else (principal.user_id if principal else None)
    row = {**values, "author_id": author, "status": "open"}
    inserted = await Task.insert(Task(**row)).returning(Task.id)
    task_id = int(inserted[0]["id"])
    changes = {field: (None, _audit_value(value)) for field, value in row.items()}
    changes.update({field: (None, value) for field, value in (extra_audit or {}).items()})
    actor = origin.user(principal) if principal else origin.actor("system", "system")
    await record_audit(actor, "task.created", entity="task", entity_id=task_id, changes=changes)
    task = await load_task(task_id)
    await reschedule_reminders(task)
    return task


async def create_task(principal: Principal, data: TaskCreate, *, origin: Origin) -> dict[str, Any]:
    """Create a task (assignee defaults to the caller); the new row."""
    values, errors = await validate_new_task(principal, data)
    if errors:
        raise InvalidInput("The task has invalid fields.", errors=errors)
    return await insert_task(principal, values, origin=origin)


async def load_task(task_id: int, condition: Combinable | None = None) -> dict[str, Any]:
    query = Task.select(*TASK_COLUMNS).where(Task.id == task_id)
    if condition is not None:
        query = query.where(condition)
    row: dict[str, Any] | None = await query.output(load_json=True).first()
    if row is None:
        raise NotFound(f"There is no task {task_id}.")
    return row


async def _visible_for_update(principal: Principal, task_id: int, action: str) -> dict[str, Any]:
    """The task locked for a change, or 404 when it does not exist or is out of scope."""
    allowed = await tasks_in_scope(principal, action)
    return await row_in_scope(Task, TASK_COLUMNS, task_id, allowed, noun="task", action=action, lock=True)


async def update_task(principal: Principal, task_id: int, data: TaskUpdate, *, origin: Origin) -> dict[str, Any]:
    """Change the fields given in ``data``; audited with before and after. The task."""
    current = await _visible_for_update(principal, task_id, "update")
    given = {
        field: getattr(data, field) for field in data.__struct_fields__ if getattr(data, field) is not msgspec.UNSET
    }
    if given.get("assignee_id") == current["assignee_id"]:
        given.pop("assignee_id")  # unchanged: no assign right needed to keep it
    values, errors = await _field_values(principal, given, prefix="")
    if "client_id" in given or "deal_id" in given:
        errors += await link_errors(principal, given.get("client_id"), given.get("deal_id"))
        values.update({field: given[field] for field in ("client_id", "deal_id") if field in given})
        merged = {**current, **values}
        if not errors and merged["deal_id"] is not None and merged["client_id"] is not None:
            # One side changed: the deal kept (or given) must still belong to the client.
            deal = await Deal.select(Deal.client_id).where(Deal.id == merged["deal_id"]).first()
            if deal is not None and deal["client_id"] != merged["client_id"]:
                field = "deal_id" if "deal_id" in given else "client_id"
                errors.append(FieldError(field, "the deal belongs to another client"))
    if not errors and {"rrule", "due_at", "assignee_id"} & set(values):
        errors += await _recurrence_errors({**current, **values}, prefix="")
    if errors:
        raise InvalidInput("The task change has invalid fields.", errors=errors)
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if diff:
        now = datetime.now(UTC)
        await Task.update(
            {**{getattr(Task, field): after for field, (_, after) in diff.items()}, Task.updated_at: now}
        ).where(Task.id == task_id)
        await record_audit(
            origin.user(principal),
            "task.updated",
            entity="task",
            entity_id=task_id,
            changes={field: (_audit_value(before), _audit_value(after)) for field, (before, after) in diff.items()},
        )
    task = await load_task(task_id)
    if {"due_at", "assignee_id", "remind_before_minutes"} & set(diff):
        await reschedule_reminders(task)  # the old timers see the change and stay silent
    return task


async def complete_task(
    principal: Principal, task_id: int, *, origin: Origin
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Mark an open task done. A recurring task's next occurrence (the first after its due
    time, in the assignee's timezone) is created in the same transaction, its checklist
    unticked. The task and the next one (or None)."""
    current = await _visible_for_update(principal, task_id, "update")
    if current["status"] != "open":
        raise Conflict(f"Task {task_id} is {current['status']}, not open.", task_status=current["status"])
    now = datetime.now(UTC)
    await Task.update({Task.status: "done", Task.done_at: now, Task.updated_at: now}).where(Task.id == task_id)
    await record_audit(
        origin.user(principal),
        "task.completed",
        entity="task",
        entity_id=task_id,
        changes={"status": ("open", "done"), "done_at": (None, now.isoformat())},
    )
    next_task = None
    if current["rrule"]:
        due = next_occurrence(current["rrule"], current["due_at"], await user_timezone(current["assignee_id"]))
        if due is not None:
            values = {field: current[field] for field in RECURRING_FIELDS}
            values["due_at"] = due
            values["checklist"] = [{"text": item["text"], "done": False} for item in current["checklist"]]
            next_task = await insert_task(
                principal,
                values,
                origin=origin,
                author_id=current["author_id"],
                extra_audit={"previous_task_id": task_id},
            )
    return await load_task(task_id), next_task


async def reopen_task(principal: Principal, task_id: int, *, origin: Origin) -> dict[str, Any]:
    """Put a done (or cancelled) task back to open. A next occurrence already created stays."""
    current = await _visible_for_update(principal, task_id, "update")
    if current["status"] == "open":
        raise Conflict(f"Task {task_id} is already open.", task_status="open")
    await Task.update({Task.status: "open", Task.done_at: None, Task.updated_at: datetime.now(UTC)}).where(
        Task.id == task_id
    )
    await record_audit(
        origin.user(principal),
        "task.reopened",
        entity="task",
        entity_id=task_id,
        changes={"status": (current["status"], "open"), "done_at": (_audit_value(current["done_at"]), None)},
    )
    task = await load_task(task_id)
    await reschedule_reminders(task)
    return task


async def delete_task(principal: Principal, task_id: int, *, origin: Origin) -> None:
    """Delete a task; the audit row keeps what it was."""
    current = await _visible_for_update(principal, task_id, "delete")
    await Task.delete().where(Task.id == task_id)
    kept = ("title", "assignee_id", "author_id", "client_id", "deal_id", "due_at", "status", "rrule")
    await record_audit(
        origin.user(principal),
        "task.deleted",
        entity="task",
        entity_id=task_id,
        changes={field: (_audit_value(current[field]), None) for field in kept},
    )


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
