"""The tasks API under /api/v1: tasks, the planner, and dormant clients (rotation)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, IdFilter, Limit, Sort, page_of
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.reminders.schedule import zone_of
from crm.tenants.reminders.snooze import snooze_task
from crm.tenants.tasks.dormant import DormantClientsController
from crm.tenants.tasks.planner import DEFAULT_WEEKS, MAX_WEEKS, build_planner
from crm.tenants.tasks.reads import TASK_LIST, TaskFilters, task_page, task_read, task_reads
from crm.tenants.tasks.schemas import (
    Planner,
    TaskCompleted,
    TaskCreate,
    TaskPage,
    TaskRead,
    TaskSnooze,
    TaskSnoozed,
    TaskUpdate,
)
from crm.tenants.tasks.services import (
    complete_task,
    create_task,
    delete_task,
    load_task,
    reopen_task,
    tasks_in_scope,
    update_task,
)

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Weeks = Annotated[int, QueryParameter(ge=1, le=MAX_WEEKS, description=f"1 to {MAX_WEEKS}")]


class TasksController(Controller):
    path = "/api/v1/tasks"
    tags = ["tasks"]
    guards = [requires_module("tasks")]

    @post(
        "/",
        opt=permission("tasks", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createTask",
        summary="Create a task (assigned to you unless you may assign it to someone else)",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[TaskCreate]
    ) -> TaskRead:
        async with tenant_scope(principal.tenant):
            row = await create_task(principal, data, origin=origin_of(request))
            return await task_read(row)

    @get(
        "/",
        opt=permission("tasks", "read"),
        operation_id="listTasks",
        summary="Tasks you may see",
        description="`view=today|week` is your local day or Monday–Sunday week, `view=overdue` open tasks "
        "due before now. Sort by due_at (default), created_at or id.",
    )
    async def list_tasks(
        self,
        principal: NamedDependency[Principal],
        assignee_id: IdFilter = None,
        status: FromQuery[str | None] = None,
        client_id: IdFilter = None,
        deal_id: IdFilter = None,
        priority: FromQuery[str | None] = None,
        due_at_from: FromQuery[datetime | None] = None,
        due_at_to: FromQuery[datetime | None] = None,
        view: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> TaskPage:
        ordering = TASK_LIST.ordering(sort)
        filters = TaskFilters(
            assignee_id=assignee_id,
            status=status,
            client_id=client_id,
            deal_id=deal_id,
            priority=priority,
            due_at_from=due_at_from,
            due_at_to=due_at_to,
            view=view,
        )

        async def page() -> TaskPage:
            rows, after = page_of(await task_page(principal, filters, ordering, cursor, limit), ordering, limit)
            return TaskPage(items=await task_reads(rows), next_cursor=after)

        return await read_in_tenant(principal.tenant, page)

    @get(
        "/planner",
        opt=permission("tasks", "read"),
        operation_id="taskPlanner",
        summary="Each employee's tasks per local day, with done/total progress",
        description="`start` (YYYY-MM-DD) defaults to this week's Monday in your timezone; days are "
        "calendar days in each employee's own timezone.",
    )
    async def planner(
        self,
        principal: NamedDependency[Principal],
        start: FromQuery[date | None] = None,
        weeks: Weeks = DEFAULT_WEEKS,
        assignee_id: IdFilter = None,
    ) -> Planner:
        async def build() -> Planner:
            return await build_planner(principal, start=start, weeks=weeks, assignee_id=assignee_id)

        return await read_in_tenant(principal.tenant, build)

    @get("/{task_id:int}", opt=permission("tasks", "read"), operation_id="getTask", summary="One task you may see")
    async def get_task(self, principal: NamedDependency[Principal], task_id: Id) -> TaskRead:
        async def one() -> TaskRead:
            return await task_read(await load_task(task_id, await tasks_in_scope(principal, "read")))

        return await read_in_tenant(principal.tenant, one)

    @patch("/{task_id:int}", opt=permission("tasks", "update"), operation_id="updateTask", summary="Change a task")
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        task_id: Id,
        data: JSONBody[TaskUpdate],
    ) -> TaskRead:
        async with tenant_scope(principal.tenant):
            return await task_read(await update_task(principal, task_id, data, origin=origin_of(request)))

    @delete(
        "/{task_id:int}",
        opt=permission("tasks", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteTask",
        summary="Delete a task",
    )
    async def remove(self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], task_id: Id) -> None:
        async with tenant_scope(principal.tenant):
            await delete_task(principal, task_id, origin=origin_of(request))

    @post(
        "/{task_id:int}/complete",
        opt=permission("tasks", "update"),
        status_code=HTTP_200_OK,
        operation_id="completeTask",
        summary="Mark a task done; a recurring task gets its next occurrence",
    )
    async def complete(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], task_id: Id
    ) -> TaskCompleted:
        async with tenant_scope(principal.tenant):
            done, following = await complete_task(principal, task_id, origin=origin_of(request))
            return TaskCompleted(
                task=await task_read(done), next_task=await task_read(following) if following else None
            )

    @post(
        "/{task_id:int}/reopen",
        opt=permission("tasks", "update"),
        status_code=HTTP_200_OK,
        operation_id="reopenTask",
        summary="Put a done task back to open",
    )
    async def reopen(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], task_id: Id
    ) -> TaskRead:
        async with tenant_scope(principal.tenant):
            return await task_read(await reopen_task(principal, task_id, origin=origin_of(request)))

    @post(
        "/{task_id:int}/snooze",
        opt=permission("tasks", "read"),
        status_code=HTTP_200_OK,
        operation_id="snoozeTask",
        summary="Remind me of this task again: in 15 minutes, in an hour, or tomorrow morning",
    )
    async def snooze(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        task_id: Id,
        data: JSONBody[TaskSnooze],
    ) -> TaskSnoozed:
        async with tenant_scope(principal.tenant):
            at = await snooze_task(principal, task_id, data.choice, origin=origin_of(request))
        return TaskSnoozed(task_id=task_id, remind_at=at, remind_at_local=at.astimezone(zone_of(principal.timezone)))


CONTROLLERS: list[type[Controller]] = [TasksController, DormantClientsController]
