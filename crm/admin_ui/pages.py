"""The staff dashboard: today's tasks and the overdue ones (the same task list the API and
the bot's /today read), and the latest activity on clients the user may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from crm.admin_ui.console import open_console, render
from crm.admin_ui.texts import add_texts
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.activities.services import activities_in_scope
from crm.tenants.activities.tables import Activity
from crm.tenants.tasks.reads import TASK_LIST, TaskFilters, local_midnight, task_page, zone_of

SHOWN = 20

add_texts(
    {
        "ru": {
            "dashboard.title": "Сегодня",
            "dashboard.hello": "Здравствуйте, {name}!",
            "dashboard.overdue": "Просрочено",
            "dashboard.today": "На сегодня",
            "dashboard.recent": "Последние действия",
            "dashboard.no_tasks": "Задач на сегодня нет.",
            "dashboard.progress": "Сделано {done} из {total}",
        },
        "en": {
            "dashboard.title": "Today",
            "dashboard.hello": "Hello, {name}!",
            "dashboard.overdue": "Overdue",
            "dashboard.today": "Due today",
            "dashboard.recent": "Recent activity",
            "dashboard.no_tasks": "No tasks for today.",
            "dashboard.progress": "{done} of {total} done",
        },
    }
)


class DashboardController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def dashboard(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        user = console.user
        zone = zone_of(user.timezone)
        now = datetime.now(UTC)
        today = now.astimezone(zone).date()
        start, end = local_midnight(today, zone), local_midnight(today + timedelta(days=1), zone)
        async with tenant_scope(console.tenant):
            ordering = TASK_LIST.ordering(None)
            open_tasks = await task_page(
                user, TaskFilters(assignee_id=user.user_id, status="open", due_at_to=end), ordering, None, SHOWN
            )
            done_today = await task_page(
                user,
                TaskFilters(assignee_id=user.user_id, status="done", due_at_from=start, due_at_to=end),
                ordering,
                None,
                SHOWN,
            )
            recent = await (
                Activity.select(
                    Activity.id,
                    Activity.kind,
                    Activity.occurred_at,
                    Activity.comment,
                    Activity.client_id,
                    Activity.client_id.name.as_alias("client"),
                )
                .where(await activities_in_scope(user, "read"))
                .order_by(Activity.occurred_at, ascending=False)
                .limit(10)
            )
        overdue = [task for task in open_tasks[:SHOWN] if task["due_at"] < start]
        due_today = [task for task in open_tasks[:SHOWN] if task["due_at"] >= start]
        return render(
            console,
            "dashboard.html",
            zone=zone,
            overdue=overdue,
            due_today=due_today,
            done=len(done_today),
            total=len(done_today) + len(due_today),
            recent=recent,
        )
