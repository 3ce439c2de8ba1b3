"""The planner: each employee's tasks per local day over a few weeks, with progress.

Days are calendar days in each ASSIGNEE's timezone (a task due at 23:30 in Vladivostok is
on that Vladivostok day, whoever looks). One query aggregates everything, grouped by
assignee and local date (``AT TIME ZONE``); each employee's range is turned into a UTC
range first, so the (assignee_id, due_at) index bounds the rows read even with hundreds
of thousands of tasks in the company.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from crm.platform.auth import Principal
from crm.platform.tenancy import scope_connection
from crm.tenants.tasks.reads import week_start, zone_of
from crm.tenants.tasks.schemas import Planner, PlannerDay, PlannerEmployee, PlannerTask
from crm.tenants.users.scopes import records_in_scope
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User

MAX_WEEKS = 6
DEFAULT_WEEKS = 3
# A day lists its first tasks by due time; its counts cover all of them.
PLANNER_TASKS_PER_DAY = 50

PLANNER_SQL = """
SELECT d.assignee_id, d.day, count(*) AS total,
       count(*) FILTER (WHERE d.status = 'done') AS done,
       count(*) FILTER (WHERE d.status = 'open' AND d.due_at < $4) AS overdue,
       coalesce(
           json_agg(
               json_build_object('id', d.id, 'title', d.title, 'due_at', d.due_at, 'status', d.status,
                                 'client_id', d.client_id)
               ORDER BY d.due_at, d.id
           ) FILTER (WHERE d.position <= $5),
           '[]'
       )::text AS tasks
FROM (
    SELECT u.id AS assignee_id, t.id, t.title, t.due_at, t.status, t.client_id,
           (t.due_at AT TIME ZONE u.timezone)::date AS day,
           row_number() OVER (
               PARTITION BY u.id, (t.due_at AT TIME ZONE u.timezone)::date ORDER BY t.due_at, t.id
           ) AS position
    FROM users u
    CROSS JOIN LATERAL (
        -- Per employee: their local range as UTC bounds, read off the (assignee_id, due_at)
        -- index. OFFSET 0 keeps PostgreSQL from flattening this into a hash join that
        -- scans every task of the company.
        SELECT t.id, t.title, t.due_at, t.status, t.client_id
        FROM tasks t
        WHERE t.assignee_id = u.id
          AND t.due_at >= ($2::date)::timestamp AT TIME ZONE u.timezone
          AND t.due_at < ($3::date)::timestamp AT TIME ZONE u.timezone
          AND t.status <> 'cancelled'
        OFFSET 0
    ) t
    WHERE u.id = ANY($1::int[])
) d
GROUP BY d.assignee_id, d.day
"""

_planner_tasks = msgspec.json.Decoder(list[PlannerTask])


async def planner_employees(principal: Principal, assignee_id: int | None) -> list[dict[str, Any]]:
    """The employees whose tasks ``principal`` may read and whom they may see: the tasks
    scope applied to the user as assignee (``own``: oneself; ``department``: the subtree)."""
    visible = await users_in_scope(principal, "read") | (User.id == principal.user_id)
    covered = await records_in_scope(principal, "tasks", "read", User.id)
    query = User.select(User.id, User.name, User.timezone).where(visible, covered)
    if assignee_id is not None:
        query = query.where(User.id == assignee_id)
    else:
        query = query.where(User.is_active.eq(True))
    rows: list[dict[str, Any]] = await query.order_by(User.name).order_by(User.id)
    return rows


async def build_planner(principal: Principal, *, start: date | None, weeks: int, assignee_id: int | None) -> Planner:
    """The planner from ``start`` (default: this week's Monday in the caller's zone)."""
    now = datetime.now(UTC)
    first = start or week_start(now, zone_of(principal.timezone))
    end = first + timedelta(days=7 * weeks)
    employees = await planner_employees(principal, assignee_id)
    cells: dict[tuple[int, date], Any] = {}
    if employees:
        rows = await scope_connection().fetch(
            PLANNER_SQL, [employee["id"] for employee in employees], first, end, now, PLANNER_TASKS_PER_DAY
        )
        cells = {(row["assignee_id"], row["day"]): row for row in rows}
    days = [first + timedelta(days=offset) for offset in range(7 * weeks)]
    return Planner(
        start=first,
        weeks=weeks,
        end=end - timedelta(days=1),
        employees=[_employee(employee, days, cells) for employee in employees],
    )


def _employee(employee: dict[str, Any], days: list[date], cells: dict[tuple[int, date], Any]) -> PlannerEmployee:
    shown = []
    for day in days:
        row = cells.get((employee["id"], day))
        if row is None:
            shown.append(PlannerDay(date=day, total=0, done=0, overdue=0, tasks=[]))
            continue
        tasks = _planner_tasks.decode(row["tasks"])
        for task in tasks:
            task.due_at = task.due_at.astimezone(UTC)
        shown.append(PlannerDay(date=day, total=row["total"], done=row["done"], overdue=row["overdue"], tasks=tasks))
    return PlannerEmployee(
        user_id=employee["id"],
        name=employee["name"],
        timezone=employee["timezone"],
        total=sum(day.total for day in shown),
        done=sum(day.done for day in shown),
        overdue=sum(day.overdue for day in shown),
        days=shown,
    )
