"""``/today`` and ``/week``: the user's open tasks by local day, overdue first, each with a
Done button; a new task on a client and Reassign (the card's buttons).

The lists read through the tasks API's own query (``task_page``: the same rights), and
Done, New task and Reassign call the API's service functions (``complete_task``,
``create_task``, ``update_task``), audited with the channel ``bot``.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from crm.bot.callbacks import AgendaTaskDone, NewTaskDue, NewTaskStart, TaskReassign, TaskReassignTo, WorkStep
from crm.bot.keyboard_builder import Keyboard
from crm.bot.links import BOT
from crm.bot.texts import Texts
from crm.bot.work_texts import WorkTexts, label, may
from crm.platform.auth import Principal
from crm.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from crm.tenants.clients.tables import Client
from crm.tenants.tasks.reads import TASK_LIST, TaskFilters, local_midnight, task_page, zone_of
from crm.tenants.tasks.schemas import TaskCreate, TaskUpdate
from crm.tenants.tasks.services import complete_task, create_task, readable_client, tasks_in_scope, update_task
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import records_in_scope, row_in_scope
from crm.tenants.users.tables import User

# A list longer than this points to the CRM: a chat message is not a planner.
AGENDA_LIMIT = 20
DAYS = {"today": 1, "week": 7}
# Quick due times: that day at this local hour ("today" when it has passed: in an hour).
DUE_HOUR = 10
TODAY_HOUR = 18
QUICK_DAYS = (0, 1, 3, 7)
ASSIGNEES_SHOWN = 20


class NewTask(StatesGroup):
    title = State()
    due = State()


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_today, Command("today"))
    router.message.register(show_week, Command("week"))
    router.callback_query.register(mark_done, AgendaTaskDone.filter())
    router.callback_query.register(ask_title, NewTaskStart.filter())
    router.message.register(take_title, StateFilter(NewTask.title), F.text, ~F.text.startswith("/"))
    router.callback_query.register(create_with_due, StateFilter(NewTask.due), NewTaskDue.filter())
    router.callback_query.register(choose_assignee, TaskReassign.filter())
    router.callback_query.register(reassign, TaskReassignTo.filter())
    return router


def quick_due(days: int, zone: ZoneInfo, now: datetime) -> datetime:
    """The due time of a quick choice: ``days`` from today at 10:00 local; today at 18:00
    (or in an hour, when that has passed)."""
    today = now.astimezone(zone).date()
    if days == 0:
        evening = datetime.combine(today, time(TODAY_HOUR), tzinfo=zone).astimezone(UTC)
        return evening if evening > now else now + timedelta(hours=1)
    return datetime.combine(today + timedelta(days=days), time(DUE_HOUR), tzinfo=zone).astimezone(UTC)


# --- /today and /week -------------------------------------------------------------------


async def show_today(message: Message, staff: Principal, texts: Texts) -> None:
    await _show(message, staff, texts, "today")


async def show_week(message: Message, staff: Principal, texts: Texts) -> None:
    await _show(message, staff, texts, "week")


async def _show(message: Message, staff: Principal, texts: Texts, view: str) -> None:
    words = WorkTexts(texts.locale)
    if not may(staff, "tasks", "tasks", "read"):
        await message.answer(words("denied"))
        return
    text, keyboard = await agenda(staff, view)
    await message.answer(text, reply_markup=keyboard)


async def agenda(staff: Principal, view: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The list's text and its Done buttons: overdue first, then each local day."""
    words = WorkTexts(staff.locale)
    zone = zone_of(staff.timezone)
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    filters = TaskFilters(
        assignee_id=staff.user_id,
        status="open",
        due_at_to=local_midnight(today + timedelta(days=DAYS[view]), zone),
    )
    rows = await task_page(staff, filters, TASK_LIST.ordering(None), None, AGENDA_LIMIT)
    more = len(rows) > AGENDA_LIMIT
    rows = rows[:AGENDA_LIMIT]
    if not rows:
        return words(f"{view}.empty"), None
    clients = await _client_names(staff, {row["client_id"] for row in rows if row["client_id"]})
    groups: dict[str, list[str]] = {}
    builder = Keyboard()
    for row in rows:
        due: datetime = row["due_at"]
        overdue = due < now
        heading = words("tasks.overdue") if overdue else words.day_heading(due.astimezone(zone).date(), today)
        when = words.moment(due, zone) if overdue else f"{due.astimezone(zone):%H:%M}"
        client = clients.get(row["client_id"])
        groups.setdefault(heading, []).append(f"• {when} {row['title']}" + (f" — {client}" if client else ""))
        builder.button(
            text=label(f"✓ {when} {row['title']}"), callback_data=AgendaTaskDone(task_id=row["id"], view=view)
        )
    builder.adjust(1)
    # Overdue tasks are the earliest, so insertion order already puts them first.
    parts = [words(f"{view}.title")] + [f"\n{heading}\n" + "\n".join(lines) for heading, lines in groups.items()]
    if more:
        parts.append("\n" + words("tasks.more"))
    return "\n".join(parts), builder.as_markup()


async def _client_names(staff: Principal, ids: set[int]) -> dict[int, str]:
    """Names of the tasks' clients that the user may read (others stay unnamed)."""
    if not ids or staff.scope("clients", "read") == "none":
        return {}
    readable = await records_in_scope(staff, "clients", "read", Client.responsible_id, Client.author_id)
    rows = await Client.select(Client.id, Client.name).where(Client.id.is_in(list(ids)), readable)
    return {row["id"]: row["name"] for row in rows}


async def mark_done(query: CallbackQuery, callback_data: AgendaTaskDone, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    if not may(staff, "tasks", "tasks", "update"):
        await query.answer(words("denied"), show_alert=True)
        return
    try:
        done, following = await complete_task(staff, callback_data.task_id, origin=BOT)
    except NotFound:
        await query.answer(words("task.gone"), show_alert=True)
        return
    except Conflict:
        await query.answer(words("task.closed"), show_alert=True)
        return
    note = words("task.done", title=done["title"])
    if following is not None:
        note += " " + words("task.next", when=words.moment(following["due_at"], zone_of(staff.timezone)))
    if isinstance(query.message, Message) and callback_data.view in DAYS:
        text, keyboard = await agenda(staff, callback_data.view)
        await query.message.edit_text(text, reply_markup=keyboard)
    await query.answer(note)


# --- a new task on a client --------------------------------------------------------------


async def ask_title(
    query: CallbackQuery, callback_data: NewTaskStart, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    words = WorkTexts(texts.locale)
    if not may(staff, "tasks", "tasks", "create"):
        await query.answer(words("denied"), show_alert=True)
        return
    client = await readable_client(staff, callback_data.client_id)
    if client is None:
        await query.answer(words("card.gone"), show_alert=True)
        return
    await state.set_state(NewTask.title)
    await state.set_data({"tenant_id": staff.tenant.id, "client_id": client["id"]})
    if isinstance(query.message, Message):
        await query.message.answer(words("task.ask_title", client=client["name"]), reply_markup=cancel_keyboard(words))
    await query.answer()


async def take_title(message: Message, staff: Principal, texts: Texts, state: FSMContext) -> None:
    words = WorkTexts(texts.locale)
    data = await state.get_data()
    if data.get("tenant_id") != staff.tenant.id:
        await state.clear()
        await message.answer(words("call.stale"))
        return
    await state.update_data(title=(message.text or "").strip())
    await state.set_state(NewTask.due)
    builder = Keyboard()
    for days in QUICK_DAYS:
        builder.button(text=words("due.0" if days == 0 else f"next.{days}"), callback_data=NewTaskDue(days=days))
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    builder.adjust(2)
    await message.answer(words("task.ask_due"), reply_markup=builder.as_markup())


async def create_with_due(
    query: CallbackQuery, callback_data: NewTaskDue, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    words = WorkTexts(texts.locale)
    data: dict[str, Any] = await state.get_data()
    if data.get("tenant_id") != staff.tenant.id or callback_data.days not in QUICK_DAYS:
        await state.clear()
        await query.answer(words("call.stale"), show_alert=True)
        return
    zone = zone_of(staff.timezone)
    due = quick_due(callback_data.days, zone, datetime.now(UTC))
    try:
        task = await create_task(
            staff,
            TaskCreate(title=data.get("title", ""), due_at=due, client_id=data["client_id"]),
            origin=BOT,
        )
    except InvalidInput as problem:
        await state.clear()
        await query.answer(words("call.invalid", problems=problems_of(problem)), show_alert=True)
        return
    await state.clear()
    if isinstance(query.message, Message):
        await query.message.edit_text(
            words("task.created", title=task["title"], when=words.moment(task["due_at"], zone))
        )
    await query.answer()


# --- reassigning ---------------------------------------------------------------------------


def may_reassign(staff: Principal) -> bool:
    """Whether the role may give tasks to someone other than the user (``tasks.assign``)."""
    return may(staff, "tasks", "tasks", "update") and staff.scope("tasks", "assign") not in ("none", "own")


async def choose_assignee(query: CallbackQuery, callback_data: TaskReassign, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    if not may_reassign(staff):
        await query.answer(words("denied"), show_alert=True)
        return
    try:
        task = await row_in_scope(
            Task,
            (Task.id, Task.title, Task.assignee_id, Task.status),
            callback_data.task_id,
            await tasks_in_scope(staff, "update"),
            noun="task",
            action="update",
        )
    except NotFound:
        await query.answer(words("task.gone"), show_alert=True)
        return
    # The users update_task would accept (may_assign): active, within the assign scope.
    covered = await records_in_scope(staff, "tasks", "assign", User.id)
    people = (
        await User.select(User.id, User.name)
        .where(User.is_active.eq(True), covered, User.id != task["assignee_id"])
        .order_by(User.name)
        .limit(ASSIGNEES_SHOWN)
    )
    if task["status"] != "open" or not people:
        await query.answer(words("task.closed" if task["status"] != "open" else "reassign.nobody"), show_alert=True)
        return
    builder = Keyboard()
    for person in people:
        builder.button(
            text=label(person["name"]), callback_data=TaskReassignTo(task_id=task["id"], user_id=person["id"])
        )
    builder.adjust(2)
    if isinstance(query.message, Message):
        await query.message.answer(words("reassign.choose", title=task["title"]), reply_markup=builder.as_markup())
    await query.answer()


async def reassign(query: CallbackQuery, callback_data: TaskReassignTo, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    if not may_reassign(staff):
        await query.answer(words("denied"), show_alert=True)
        return
    try:
        task = await update_task(
            staff, callback_data.task_id, TaskUpdate(assignee_id=callback_data.user_id), origin=BOT
        )
    except NotFound:
        await query.answer(words("task.gone"), show_alert=True)
        return
    except (InvalidInput, Forbidden):
        await query.answer(words("denied"), show_alert=True)
        return
    name = await User.select(User.name).where(User.id == task["assignee_id"]).first()
    if isinstance(query.message, Message):
        await query.message.edit_text(words("reassign.done", title=task["title"], name=name["name"] if name else ""))
    await query.answer()


def cancel_keyboard(words: WorkTexts) -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    return builder.as_markup()


def problems_of(problem: InvalidInput) -> str:
    """The invalid fields as the service named them (the API's problem document's words)."""
    return "; ".join(f"{error.field}: {error.detail}" for error in problem.errors) or problem.detail
