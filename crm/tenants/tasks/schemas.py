"""What the tasks API accepts and shows.

Request bodies are loosely typed on purpose (plain ``str`` and ``datetime``): the service
checks every field and reports all problems at once, naming each field, instead of
stopping at the first value msgspec cannot convert.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

AwareDatetime = Annotated[
    datetime, msgspec.Meta(description="ISO 8601 with a UTC offset, e.g. 2025-03-24T10:00:00+03:00")
]
Priority = Annotated[str, msgspec.Meta(description="low | normal | high")]
Rule = Annotated[
    str, msgspec.Meta(description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO", examples=["FREQ=WEEKLY;BYDAY=MO"])
]


class ChecklistItem(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: str
    done: bool = False


class TaskCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new task; the assignee defaults to the caller."""

    title: str
    due_at: AwareDatetime
    description: str = ""
    task_type: str | None = None
    assignee_id: int | None = None
    client_id: int | None = None
    deal_id: int | None = None
    priority: Priority = "normal"
    remind_before_minutes: list[int] = msgspec.field(default_factory=list)
    checklist: list[ChecklistItem] = msgspec.field(default_factory=list)
    rrule: Rule | None = None


class TaskUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; null clears the optional ones."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    due_at: AwareDatetime | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    task_type: str | msgspec.UnsetType | None = msgspec.UNSET
    assignee_id: int | msgspec.UnsetType = msgspec.UNSET
    client_id: int | msgspec.UnsetType | None = msgspec.UNSET
    deal_id: int | msgspec.UnsetType | None = msgspec.UNSET
    priority: Priority | msgspec.UnsetType = msgspec.UNSET
    remind_before_minutes: list[int] | msgspec.UnsetType = msgspec.UNSET
    checklist: list[ChecklistItem] | msgspec.UnsetType = msgspec.UNSET
    rrule: Rule | msgspec.UnsetType | None = msgspec.UNSET


class TaskRead(msgspec.Struct, kw_only=True):
    id: int
    title: str
    description: str
    task_type: str | None
    assignee_id: int
    author_id: int | None
    client_id: int | None
    deal_id: int | None
    due_at: datetime  # UTC
    # The same instant in the assignee's timezone (users.timezone).
    due_at_local: datetime
    assignee_timezone: str
    remind_before_minutes: list[int]
    priority: str
    status: str  # open | done | cancelled
    overdue: bool
    done_at: datetime | None
    checklist: list[ChecklistItem]
    rrule: str | None
    created_at: datetime
    updated_at: datetime


class TaskPage(msgspec.Struct, kw_only=True):
    items: list[TaskRead]
    next_cursor: str | None


class TaskCompleted(msgspec.Struct, kw_only=True):
    task: TaskRead
    # The next occurrence of a recurring task, created in the same transaction.
    next_task: TaskRead | None


class TaskSnooze(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Remind me again: ``{"for": "15m" | "1h" | "tomorrow"}``."""

    choice: Annotated[str, msgspec.Meta(description="15m | 1h | tomorrow")] = msgspec.field(name="for")


class TaskSnoozed(msgspec.Struct, kw_only=True):
    task_id: int
    remind_at: datetime  # UTC
    remind_at_local: datetime  # on the caller's clock


class PlannerTask(msgspec.Struct, kw_only=True):
    id: int
    title: str
    due_at: datetime
    status: str
    client_id: int | None


class PlannerDay(msgspec.Struct, kw_only=True):
    date: date
    total: int
    done: int
    overdue: int
    # The day's first tasks by due time (at most PLANNER_TASKS_PER_DAY; `total` counts all).
    tasks: list[PlannerTask]


class PlannerEmployee(msgspec.Struct, kw_only=True):
    user_id: int
    name: str
    timezone: str
    total: int
    done: int
    overdue: int
    days: list[PlannerDay]


class Planner(msgspec.Struct, kw_only=True):
    start: date
    weeks: int
    end: date  # the last day shown
    employees: list[PlannerEmployee]
