"""Reading tasks: the list with its filters and views, and the read shape with local times.

"Today" and "this week" are the caller's local calendar day and Monday–Sunday week
(users.timezone), turned into a UTC range so the (assignee_id, due_at) index serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import ListSpec, Ordering, page_query
from crm.tenants.tasks.schemas import TaskRead
from crm.tenants.tasks.services import TASK_COLUMNS, tasks_in_scope
from crm.tenants.tasks.tables import Task
from crm.tenants.users.tables import User

# An id filter in a query string: out-of-range values answer 422 instead of reaching SQL.
TASK_LIST = ListSpec(
    sortable={"due_at": Task.due_at, "created_at": Task.created_at, "id": Task.id},
    default_sort="due_at",
)
VIEWS = ("today", "overdue", "week")
STATUSES = ("open", "done", "cancelled")


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name``; UTC when it is unknown (a user row edited by hand)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the local calendar ``day`` begins in ``zone``."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def week_start(now: datetime, zone: ZoneInfo) -> date:
    """The Monday of ``now``'s local week."""
    today = now.astimezone(zone).date()
    return today - timedelta(days=today.weekday())


@dataclass(frozen=True)
class TaskFilters:
    assignee_id: int | None = None
    status: str | None = None
    client_id: int | None = None
    deal_id: int | None = None
    priority: str | None = None
    due_at_from: datetime | None = None
    due_at_to: datetime | None = None
    view: str | None = None


def _checked(filters: TaskFilters) -> None:
    errors = []
    for field in ("due_at_from", "due_at_to"):
        value = getattr(filters, field)
        if value is not None and value.utcoffset() is None:
            errors.append(FieldError(field, "must carry a UTC offset"))
    if filters.view is not None and filters.view not in VIEWS:
        errors.append(FieldError("view", f"must be one of {', '.join(VIEWS)}"))
    if filters.status is not None and filters.status not in STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    if errors:
        raise InvalidInput("The task list has invalid parameters.", errors=errors)


async def task_page(
    principal: Principal, filters: TaskFilters, ordering: Ordering, cursor: str | None, limit: int
) -> list[dict[str, Any]]:
    """One page (plus one row) of the tasks ``principal`` may read, filtered."""
    _checked(filters)
    query = Task.select(*TASK_COLUMNS).where(await tasks_in_scope(principal, "read"))
    for column, wanted in (
        (Task.assignee_id, filters.assignee_id),
        (Task.status, filters.status),
        (Task.client_id, filters.client_id),
        (Task.deal_id, filters.deal_id),
        (Task.priority, filters.priority),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if filters.due_at_from is not None:
        query = query.where(Task.due_at >= filters.due_at_from)
    if filters.due_at_to is not None:
        query = query.where(Task.due_at < filters.due_at_to)
    now = datetime.now(UTC)
    zone = zone_of(principal.timezone)
    if filters.view == "overdue":
        query = query.where(Task.status == "open", Task.due_at < now)
    elif filters.view in ("today", "week"):
        first = now.astimezone(zone).date() if filters.view == "today" else week_start(now, zone)
        days = 1 if filters.view == "today" else 7
        query = query.where(
            Task.due_at >= local_midnight(first, zone), Task.due_at < local_midnight(first + timedelta(days=days), zone)
        )
    rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).output(load_json=True).run()
    return rows


async def task_reads(rows: list[dict[str, Any]]) -> list[TaskRead]:
    """Rows as the API shows them: due time also in each assignee's own timezone."""
    assignees = list({row["assignee_id"] for row in rows})
    zones: dict[int, str] = {}
    if assignees:
        found = await User.select(User.id, User.timezone).where(User.id.is_in(assignees))
        zones = {user["id"]: user["timezone"] for user in found}
    now = datetime.now(UTC)
    reads = []
    for row in rows:
        timezone = zones.get(row["assignee_id"], "UTC")
        shown = {
            **row,
            "due_at_local": row["due_at"].astimezone(zone_of(timezone)),
            "assignee_timezone": timezone,
            "overdue": row["status"] == "open" and row["due_at"] < now,
        }
        reads.append(msgspec.convert(shown, TaskRead))
    return reads


async def task_read(row: dict[str, Any]) -> TaskRead:
    return (await task_reads([row]))[0]
