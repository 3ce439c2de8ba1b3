"""Tasks and the planner in the console.

``/tasks``: the signed-in user's open tasks (today, this week, overdue, all), a Done button
(the API's ``complete_task``) and a form for a new task (``create_task``).
``/planner``: three weeks of one employee's tasks per local day, with a progress bar of done
against due per week — the planner API's ``build_planner``, for the employees the role may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.console import Console, is_htmx, open_console, redirect, render, require
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.admin_ui.work_forms import LOCAL_FORMAT, field_errors, local_moment
from crm.platform.auth import Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import page_of
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.clients._read import clients_in_scope
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.settings import setting
from crm.tenants.tasks.planner import build_planner, planner_employees
from crm.tenants.tasks.reads import TASK_LIST, TaskFilters, task_page, week_start, zone_of
from crm.tenants.tasks.schemas import PlannerDay, PlannerEmployee, TaskCreate
from crm.tenants.tasks.services import (
    PRIORITIES,
    complete_task,
    create_task,
    load_task,
    tasks_in_scope,
    validate_new_task,
)
from crm.tenants.users.scopes import records_in_scope
from crm.tenants.users.tables import User

VIEWS = ("today", "week", "overdue", "all")
SHOWN = 50
PLANNER_WEEKS = 3
# The task form's fields, named as the service names them in its errors.
TASK_FIELDS = ("title", "due_at", "priority", "task_type", "assignee_id", "description")
KNOWN_ERRORS = {"title": "tasks.error.title", "due_at": "tasks.error.due_at", "assignee_id": "tasks.error.assignee"}

register_page("/tasks")
register_page("/planner")

add_texts(
    {
        "ru": {
            "tasks.title": "Мои задачи",
            "tasks.views": "Какие задачи показать",
            "tasks.view.today": "Сегодня",
            "tasks.view.week": "Неделя",
            "tasks.view.overdue": "Просроченные",
            "tasks.view.all": "Все открытые",
            "tasks.empty": "Открытых задач здесь нет.",
            "tasks.done": "Готово",
            "tasks.done_mark": "Сделано",
            "tasks.done_notice": "Задача отмечена сделанной.",
            "tasks.created": "Задача создана.",
            "tasks.overdue": "просрочено",
            "tasks.client": "Клиент",
            "tasks.new": "Новая задача",
            "tasks.field.title": "Что сделать",
            "tasks.field.due_at": "Срок",
            "tasks.field.priority": "Приоритет",
            "tasks.field.task_type": "Тип",
            "tasks.field.assignee_id": "Исполнитель",
            "tasks.field.description": "Подробности",
            "tasks.no_type": "— без типа —",
            "tasks.priority.low": "Низкий",
            "tasks.priority.normal": "Обычный",
            "tasks.priority.high": "Высокий",
            "tasks.me": "{name} (я)",
            "tasks.create": "Создать задачу",
            "tasks.error.title": "Название задачи: от 1 до 300 символов.",
            "tasks.error.due_at": "Укажите дату и время срока.",
            "tasks.error.assignee": "Этому сотруднику вы не можете поручать задачи.",
            "planner.title": "Планировщик",
            "planner.employee": "Сотрудник",
            "planner.show": "Показать",
            "planner.previous": "← Неделей раньше",
            "planner.current": "Эта неделя",
            "planner.next": "Неделей позже →",
            "planner.week": "Неделя {first} — {last}",
            "planner.progress": "Сделано {done} из {total}",
            "planner.overdue": "Просрочено: {count}",
            "planner.more": "и ещё {count}",
            "planner.zone": "Дни и время — по часам сотрудника ({zone}).",
            "planner.weekdays": "Пн,Вт,Ср,Чт,Пт,Сб,Вс",
            "planner.free": "—",
            "planner.empty_week": "На этой неделе задач нет.",
        },
        "en": {
            "tasks.title": "My tasks",
            "tasks.views": "Which tasks to show",
            "tasks.view.today": "Today",
            "tasks.view.week": "This week",
            "tasks.view.overdue": "Overdue",
            "tasks.view.all": "All open",
            "tasks.empty": "No open tasks here.",
            "tasks.done": "Done",
            "tasks.done_mark": "Done",
            "tasks.done_notice": "The task is marked done.",
            "tasks.created": "The task is created.",
            "tasks.overdue": "overdue",
            "tasks.client": "Client",
            "tasks.new": "New task",
            "tasks.field.title": "What to do",
            "tasks.field.due_at": "Due",
            "tasks.field.priority": "Priority",
            "tasks.field.task_type": "Type",
            "tasks.field.assignee_id": "Assignee",
            "tasks.field.description": "Details",
            "tasks.no_type": "— no type —",
            "tasks.priority.low": "Low",
            "tasks.priority.normal": "Normal",
            "tasks.priority.high": "High",
            "tasks.me": "{name} (me)",
            "tasks.create": "Create the task",
            "tasks.error.title": "The task's title: 1 to 300 characters.",
            "tasks.error.due_at": "Enter the due date and time.",
            "tasks.error.assignee": "You may not give tasks to this person.",
            "planner.title": "Planner",
            "planner.employee": "Employee",
            "planner.show": "Show",
            "planner.previous": "← A week earlier",
            "planner.current": "This week",
            "planner.next": "A week later →",
            "planner.week": "Week {first} – {last}",
            "planner.progress": "{done} of {total} done",
            "planner.overdue": "Overdue: {count}",
            "planner.more": "and {count} more",
            "planner.zone": "Days and times on the employee's clock ({zone}).",
            "planner.weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
            "planner.free": "—",
            "planner.empty_week": "No tasks this week.",
        },
    }
)


async def _client_names(principal: Principal, client_ids: set[int]) -> dict[int, str]:
    """Names of the tasks' clients the user may read (others stay unnamed)."""
    if not client_ids:
        return {}
    allowed = await clients_in_scope(principal, "read")
    rows = await Client.select(Client.id, Client.name).where(Client.id.is_in(sorted(client_ids)), allowed)
    return {row["id"]: row["name"] for row in rows}


async def _shown_tasks(principal: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = await _client_names(principal, {row["client_id"] for row in rows if row["client_id"]})
    now = datetime.now(UTC)
    return [
        {
            **row,
            "client": names.get(row["client_id"]) if row["client_id"] else None,
            "overdue": row["status"] == "open" and row["due_at"] < now,
        }
        for row in rows
    ]


async def _assignees(principal: Principal) -> list[dict[str, Any]]:
    """Whom the user may give a task to: themselves, and active users in their assign scope."""
    if principal.scope("tasks", "assign") == "none":
        return [{"id": principal.user_id, "name": principal.name}]
    covered = await records_in_scope(principal, "tasks", "assign", User.id)
    rows: list[dict[str, Any]] = (
        await User.select(User.id, User.name)
        .where((User.is_active.eq(True) & covered) | (User.id == principal.user_id))
        .order_by(User.name)
        .limit(500)
    )
    return rows


async def _task_types(locale: str) -> list[tuple[str, str]]:
    items = await setting("task_types", [])
    return [
        (item["key"], (item.get("names") or {}).get(locale) or item["key"])
        for item in items
        if isinstance(item, dict) and "key" in item
    ]


def _blank_form(zone: ZoneInfo) -> dict[str, str]:
    soon = (datetime.now(UTC) + timedelta(hours=1)).astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return {"title": "", "due_at": soon.strftime(LOCAL_FORMAT), "priority": "normal", "task_type": "",
            "assignee_id": "", "description": ""}  # fmt: skip


@dataclass
class TaskListState:
    view: str = "all"
    cursor: str | None = None
    notice: str | None = None
    error: str | None = None


async def _tasks_page(
    console: Console,
    state: TaskListState,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[str]:
    user = console.user
    zone = zone_of(user.timezone)
    ordering = TASK_LIST.ordering(None)
    filters = TaskFilters(assignee_id=user.user_id, status="open", view=state.view if state.view != "all" else None)
    may_create = console.may("tasks", "create", "tasks")

    async def read() -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]], list[tuple[str, str]]]:
        try:
            rows, after = page_of(await task_page(user, filters, ordering, state.cursor, SHOWN), ordering, SHOWN)
        except InvalidInput:
            # A cursor altered by hand: the first page, and say so.
            state.error = console.texts("work.bad_parameter", field="cursor")
            rows, after = page_of(await task_page(user, filters, ordering, None, SHOWN), ordering, SHOWN)
        shown = await _shown_tasks(user, rows)
        assignees = await _assignees(user) if may_create else []
        types = await _task_types(console.texts.locale) if may_create else []
        return shown, after, assignees, types

    tasks, after, assignees, types = await read_in_tenant(console.tenant, read)
    if state.error and status_code == 200:
        status_code = 422
    return render(
        console,
        "tasks_list.html",
        status_code=status_code,
        zone=zone,
        views=VIEWS,
        state=state,
        tasks=tasks,
        next_cursor=after,
        may_update=console.may("tasks", "update", "tasks"),
        may_create=may_create,
        form=form or _blank_form(zone),
        errors=errors or {},
        assignees=assignees,
        task_types=types,
        priorities=PRIORITIES,
    )


def _view_of(value: str | None) -> tuple[str, str | None]:
    """The view asked for, or "all" and the complaint when it is not one."""
    if not value:
        return "all", None
    return (value, None) if value in VIEWS else ("all", "view")


class TasksPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get("/tasks", opt=PUBLIC)
    async def tasks(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "read", "tasks")
        view, bad = _view_of(request.query_params.get("view"))
        state = TaskListState(view=view, cursor=request.query_params.get("cursor") or None)
        if bad:
            state.error = console.texts("work.bad_parameter", field=bad)
        if request.query_params.get("created"):
            state.notice = console.texts("tasks.created")
        elif request.query_params.get("done"):
            state.notice = console.texts("tasks.done_notice")
        return await _tasks_page(console, state)

    @post("/tasks", opt=PUBLIC)
    async def create(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "create", "tasks")
        posted = await request.form()
        form = {field: str(posted.get(field) or "") for field in TASK_FIELDS}
        view, _ = _view_of(str(posted.get("view") or ""))
        user = console.user
        own: list[FieldError] = []
        due = local_moment(form["due_at"], zone_of(user.timezone))
        if due is None:
            own.append(FieldError("due_at", "must be a date and time"))
        assignee: int | None = None
        if form["assignee_id"].strip():
            try:
                assignee = int(form["assignee_id"])
            except ValueError:
                own.append(FieldError("assignee_id", "must be a user's id"))
        data = TaskCreate(
            title=form["title"],
            due_at=due or datetime.now(UTC),
            description=form["description"],
            task_type=form["task_type"] or None,
            assignee_id=assignee,
            priority=form["priority"] or "normal",
        )
        try:
            async with tenant_scope(console.tenant):
                if own:
                    # Every field is named at once: the service checks the rest without saving.
                    _, found = await validate_new_task(user, data)
                    raise InvalidInput("The task has invalid fields.", errors=own + found)
                await create_task(user, data, origin=console.origin())
        except InvalidInput as problem:
            errors = field_errors(console, problem, KNOWN_ERRORS)
            return await _tasks_page(console, TaskListState(view=view), form=form, errors=errors, status_code=422)
        return redirect(console, request, console.url("/tasks") + f"?view={view}&created=1")

    @post("/tasks/{task_id:int}/complete", opt=PUBLIC)
    async def complete(
        self, request: Request[Any, Any, Any], company: FromPath[str], task_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "update", "tasks")
        view, _ = _view_of(str((await request.form()).get("view") or ""))
        user = console.user
        try:
            async with tenant_scope(console.tenant):
                _, following = await complete_task(user, task_id, origin=console.origin())
        except Conflict:
            following = None  # done already (another tab, the bot): show it as it is
        if not is_htmx(request):
            return redirect(console, request, console.url("/tasks") + f"?view={view}&done={task_id}")

        async def rows() -> list[dict[str, Any]]:
            readable = await tasks_in_scope(user, "read")
            done = await load_task(task_id, readable)
            extra = [await load_task(following["id"], readable)] if following else []
            return await _shown_tasks(user, [done, *extra])

        return render(
            console,
            "tasks_rows.html",
            tasks=await read_in_tenant(console.tenant, rows),
            zone=zone_of(user.timezone),
            may_update=True,
            state=TaskListState(view=view),
        )


# ---------------------------------------------------------------- the planner


@dataclass
class PlannerWeek:
    first: date
    last: date
    days: list[PlannerDay]
    done: int
    total: int
    overdue: int


def _weeks(employee: PlannerEmployee) -> list[PlannerWeek]:
    weeks = []
    for start in range(0, len(employee.days), 7):
        days = employee.days[start : start + 7]
        weeks.append(
            PlannerWeek(
                first=days[0].date,
                last=days[-1].date,
                days=days,
                done=sum(day.done for day in days),
                total=sum(day.total for day in days),
                overdue=sum(day.overdue for day in days),
            )
        )
    return weeks


class PlannerPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get("/planner", opt=PUBLIC)
    async def planner(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "read", "tasks")
        user = console.user
        zone = zone_of(user.timezone)
        bad: str | None = None
        start: date | None = None
        if raw_start := request.query_params.get("start"):
            try:
                start = date.fromisoformat(raw_start)
            except ValueError:
                bad = "start"
        chosen = user.user_id
        if raw_user := request.query_params.get("user"):
            try:
                chosen = int(raw_user)
            except ValueError:
                bad = "user"
        # Whole weeks: a start on a Wednesday is read as that week's Monday.
        first = start - timedelta(days=start.weekday()) if start else week_start(datetime.now(UTC), zone)

        async def read() -> tuple[list[dict[str, Any]], Any]:
            employees = await planner_employees(user, None)
            built = await build_planner(user, start=first, weeks=PLANNER_WEEKS, assignee_id=chosen)
            return employees, built

        employees, built = await read_in_tenant(console.tenant, read)
        if not built.employees:
            # Not an employee this role may see (or no such user): the same answer either way.
            raise NotFound("There is no such employee you may see.")
        employee = built.employees[0]
        if all(row["id"] != employee.user_id for row in employees):
            employees.append({"id": employee.user_id, "name": employee.name, "timezone": employee.timezone})
        this_week = week_start(datetime.now(UTC), zone)
        return render(
            console,
            "planner.html",
            status_code=422 if bad else 200,
            error=console.texts("work.bad_parameter", field=bad) if bad else None,
            employees=employees,
            employee=employee,
            weeks=_weeks(employee),
            weekdays=console.texts("planner.weekdays").split(","),
            first=first,
            previous=first - timedelta(days=7),
            following=first + timedelta(days=7),
            this_week=this_week,
            today=datetime.now(UTC).astimezone(zone_of(employee.timezone)).date(),
            employee_zone=zone_of(employee.timezone),
            same_zone=employee.timezone == user.timezone,
            now=datetime.now(UTC),
        )


CONTROLLERS: list[type] = [TasksPageController, PlannerPageController]
