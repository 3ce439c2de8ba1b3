"""The client card in the console: the API's one-statement card (``client_card``) with the
forms a salesperson works through — log a call with its next step, add a task, tick a task
done. Each form calls the same service as the API, audited with the channel "console".

The card is a 404 for a client the user may not read, exactly as the API answers.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.clients_forms import QUICK_TIMES, FieldErrors, invalid, parse_when
from crm.admin_ui.console import Console, is_htmx, open_console, redirect, render, require
from crm.admin_ui.texts import add_texts
from crm.platform.errors import Conflict, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.activities.schemas import ActivityCreate, NextStep
from crm.tenants.activities.services import call_outcomes, create_activity
from crm.tenants.card.services import client_card
from crm.tenants.configuration.settings import setting
from crm.tenants.tasks.reads import zone_of
from crm.tenants.tasks.schemas import TaskCreate
from crm.tenants.tasks.services import complete_task, create_task

CALL_FORM = "call-form"
TASK_FORM = "task-form"

add_texts(
    {
        "ru": {
            "card.phones": "Телефоны",
            "card.emails": "Эл. почта",
            "card.responsible": "Ответственный",
            "card.nobody": "не назначен",
            "card.figures": "Показатели",
            "card.revenue": "Выиграно",
            "card.deals_open": "Открытых сделок",
            "card.deals_won": "Выиграно сделок",
            "card.deals_lost": "Проиграно сделок",
            "card.first_contact": "Первый контакт",
            "card.last_contact": "Последний контакт",
            "card.days_since": "{days} дн. назад",
            "card.timeline": "История",
            "card.contacts": "Контакты",
            "card.people": "Люди компании",
            "card.companies": "Компании",
            "card.deals": "Открытые сделки",
            "card.tasks": "Открытые задачи",
            "card.done": "Готово",
            "card.overdue": "просрочено",
            "card.log_call": "Записать звонок",
            "card.outcome": "Результат",
            "card.choose": "— выберите —",
            "card.comment": "Комментарий",
            "card.direction": "Направление",
            "card.direction.out": "Исходящий",
            "card.direction.in": "Входящий",
            "card.deal": "Сделка",
            "card.no_deal": "без сделки",
            "card.next_step": "Следующий шаг",
            "card.next_step_title": "Что сделать (необязательно)",
            "card.when": "Когда",
            "card.exact": "Или точное время",
            "card.save_call": "Сохранить звонок",
            "card.add_task": "Добавить задачу",
            "card.task_title": "Задача",
            "card.task_type": "Тип",
            "card.no_type": "без типа",
            "card.save_task": "Добавить задачу",
            "card.quick.in_hour": "Через час",
            "card.quick.today_evening": "Сегодня в 18:00",
            "card.quick.tomorrow": "Завтра в 10:00",
            "card.quick.in_two_days": "Послезавтра в 10:00",
            "card.quick.next_monday": "В понедельник в 10:00",
            "card.kind.call": "Звонок",
            "card.kind.meeting": "Встреча",
            "card.kind.note": "Заметка",
            "card.kind.email": "Письмо",
            "card.planned": "запланировано",
            "card.assignee": "Исполнитель",
            "card.invalid": "Проверьте поля формы.",
        },
        "en": {
            "card.phones": "Phones",
            "card.emails": "E-mails",
            "card.responsible": "Responsible",
            "card.nobody": "nobody",
            "card.figures": "Figures",
            "card.revenue": "Won",
            "card.deals_open": "Open deals",
            "card.deals_won": "Deals won",
            "card.deals_lost": "Deals lost",
            "card.first_contact": "First contact",
            "card.last_contact": "Last contact",
            "card.days_since": "{days} days ago",
            "card.timeline": "Timeline",
            "card.contacts": "Contacts",
            "card.people": "People at the company",
            "card.companies": "Companies",
            "card.deals": "Open deals",
            "card.tasks": "Open tasks",
            "card.done": "Done",
            "card.overdue": "overdue",
            "card.log_call": "Log a call",
            "card.outcome": "Outcome",
            "card.choose": "— choose —",
            "card.comment": "Comment",
            "card.direction": "Direction",
            "card.direction.out": "Outgoing",
            "card.direction.in": "Incoming",
            "card.deal": "Deal",
            "card.no_deal": "no deal",
            "card.next_step": "Next step",
            "card.next_step_title": "What to do (optional)",
            "card.when": "When",
            "card.exact": "Or an exact time",
            "card.save_call": "Save the call",
            "card.add_task": "Add a task",
            "card.task_title": "Task",
            "card.task_type": "Type",
            "card.no_type": "no type",
            "card.save_task": "Add the task",
            "card.quick.in_hour": "In an hour",
            "card.quick.today_evening": "Today at 18:00",
            "card.quick.tomorrow": "Tomorrow at 10:00",
            "card.quick.in_two_days": "In two days at 10:00",
            "card.quick.next_monday": "Monday at 10:00",
            "card.kind.call": "Call",
            "card.kind.meeting": "Meeting",
            "card.kind.note": "Note",
            "card.kind.email": "E-mail",
            "card.planned": "planned",
            "card.assignee": "Assignee",
            "card.invalid": "Please check the form's fields.",
        },
    }
)


def _client_id(raw: int) -> int:
    if not 1 <= raw <= MAX_ID:
        raise NotFound(f"There is no client {raw}.")
    return raw


class ClientCardPages(Controller):
    path = "/{company:str}/clients/{client_id:int}"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def card(
        self, request: Request[Any, Any, Any], company: FromPath[str], client_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "clients", "read", "clients")
        return await _card_page(console, _client_id(client_id))

    @post("/calls", opt=PUBLIC)
    async def log_call(
        self, request: Request[Any, Any, Any], company: FromPath[str], client_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "activities", "create", "calls")
        client_id = _client_id(client_id)
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            async with tenant_scope(console.tenant):
                await create_activity(console.user, _call(console, client_id, form), origin=console.origin())
        except InvalidInput as problem:
            errors = FieldErrors.of(console, problem.errors)
            return await _card_page(
                console, client_id, call=form, call_errors=errors, htmx_form=CALL_FORM, request=request
            )
        return _back_to_card(console, request, client_id, "timeline")

    @post("/tasks", opt=PUBLIC)
    async def add_task(
        self, request: Request[Any, Any, Any], company: FromPath[str], client_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "create", "tasks")
        client_id = _client_id(client_id)
        form = {key: str(value) for key, value in (await request.form()).items()}
        zone = zone_of(console.user.timezone)
        try:
            due_at = parse_when(form.get("due_exact", ""), form.get("due_quick", ""), zone, field="due_at")
            if due_at is None:
                raise invalid("due_at", "is required")
            data = TaskCreate(
                title=form.get("title", ""),
                due_at=due_at,
                task_type=form.get("task_type") or None,
                client_id=client_id,
            )
            async with tenant_scope(console.tenant):
                await create_task(console.user, data, origin=console.origin())
        except InvalidInput as problem:
            errors = FieldErrors.of(console, problem.errors)
            return await _card_page(
                console, client_id, task=form, task_errors=errors, htmx_form=TASK_FORM, request=request
            )
        return _back_to_card(console, request, client_id, "tasks")

    @post("/tasks/{task_id:int}/done", opt=PUBLIC)
    async def task_done(
        self, request: Request[Any, Any, Any], company: FromPath[str], client_id: FromPath[int], task_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "tasks", "update", "tasks")
        client_id = _client_id(client_id)
        if not 1 <= task_id <= MAX_ID:
            raise NotFound(f"There is no task {task_id}.")
        try:
            async with tenant_scope(console.tenant):
                await complete_task(console.user, task_id, origin=console.origin())
        except Conflict:
            pass  # already done (a second click, another tab): the card shows it either way
        if is_htmx(request):
            return await _card_page(console, client_id, fragment="clients_card_tasks.html")
        return redirect(console, request, console.url(f"/clients/{client_id}#tasks"))


def _back_to_card(console: Console, request: Request[Any, Any, Any], client_id: int, part: str) -> Response[str]:
    """After a saved form: the card again, at the part that changed. htmx loads the card
    whole (an address differing only by its #part would merely scroll, not reload)."""
    card = console.url(f"/clients/{client_id}")
    return redirect(console, request, card if is_htmx(request) else f"{card}#{part}")


def _call(console: Console, client_id: int, form: dict[str, str]) -> ActivityCreate:
    """The call the form describes; a next step when a time was chosen for it."""
    zone = zone_of(console.user.timezone)
    due_at = parse_when(form.get("next_exact", ""), form.get("next_quick", ""), zone, field="next_step")
    next_step = None
    if due_at is not None:
        next_step = NextStep(due_at=due_at, title=form.get("next_title", "").strip() or None)
    deal_id = form.get("deal_id", "")
    return ActivityCreate(
        kind="call",
        client_id=client_id,
        deal_id=int(deal_id) if deal_id.isdigit() and int(deal_id) <= MAX_ID else None,
        comment=form.get("comment", ""),
        direction=form.get("direction") if form.get("direction") in ("in", "out") else "out",
        outcome=form.get("outcome") or None,
        next_step=next_step,
    )


async def _card_page(
    console: Console,
    client_id: int,
    *,
    call: dict[str, str] | None = None,
    call_errors: FieldErrors | None = None,
    task: dict[str, str] | None = None,
    task_errors: FieldErrors | None = None,
    htmx_form: str | None = None,
    request: Request[Any, Any, Any] | None = None,
    fragment: str | None = None,
) -> Response[str]:
    """The card (or, for htmx, the part that changed). A form that failed is shown again
    with what was typed and its errors, status 422."""
    user = console.user
    may_call = console.may("activities", "create", "calls")
    may_add_task = console.may("tasks", "create", "tasks")
    async with tenant_scope(console.tenant):
        card = await client_card(user, client_id)
        outcomes = await call_outcomes()  # the timeline names the outcomes too
        task_types = await setting("task_types", []) if may_add_task else []
    failed = call is not None or task is not None
    context = {
        "card": card,
        "zone": zone_of(user.timezone),
        "outcomes": outcomes,
        "outcome_names": {
            item["key"]: (item.get("names") or {}).get(console.texts.locale) or item["key"]
            for item in outcomes
            if "key" in item
        },
        "task_types": [item for item in task_types if isinstance(item, dict) and "key" in item],
        "quick_times": QUICK_TIMES,
        "may_call": may_call,
        "may_add_task": may_add_task,
        "may_next_step": may_add_task,
        "may_complete": console.may("tasks", "update", "tasks"),
        "may_read_deals": console.may("deals", "read", "deals"),
        "call": call or {},
        "call_errors": call_errors or FieldErrors.none(),
        "task": task or {},
        "task_errors": task_errors or FieldErrors.none(),
    }
    status = 422 if failed else 200
    if fragment is not None:
        return render(console, fragment, status_code=status, **context)
    if request is not None and htmx_form is not None and is_htmx(request):
        template = "clients_card_call.html" if htmx_form == CALL_FORM else "clients_card_task.html"
        return render(console, template, status_code=status, **context)
    return render(console, "clients_card.html", status_code=status, **context)
