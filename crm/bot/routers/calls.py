"""Logging a call from the client card: outcome (the company's list, as buttons) → comment
(text, or none) → next step (tomorrow, in 3 days, in a week) → the call activity and its
follow-up task, created by the activities API's service function in one transaction and
audited with the channel ``bot``.

The conversation's state lives in the FSM storage (Redis or PostgreSQL), so it survives a
restart; it remembers the company it began in and stops if the user has switched since.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from crm.bot.callbacks import CallLogStart, CallNextStep, CallOutcomePick, NewTaskDue, WorkStep
from crm.bot.links import BOT
from crm.bot.routers.tasks import NewTask, problems_of, quick_due
from crm.bot.texts import Texts
from crm.bot.work_texts import WorkTexts, label, may
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput
from crm.tenants.activities.schemas import ActivityCreate, NextStep
from crm.tenants.activities.services import call_outcomes, create_activity, next_step_required
from crm.tenants.tasks.reads import zone_of
from crm.tenants.tasks.services import load_task, readable_client

NEXT_STEP_DAYS = (1, 3, 7)


class LogCall(StatesGroup):
    outcome = State()
    comment = State()
    next_step = State()


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(start, CallLogStart.filter())
    router.callback_query.register(pick_outcome, StateFilter(LogCall.outcome), CallOutcomePick.filter())
    router.message.register(take_comment, StateFilter(LogCall.comment), F.text, ~F.text.startswith("/"))
    router.message.register(ask_for_text, StateFilter(LogCall.comment), ~F.text)
    router.callback_query.register(skip_comment, StateFilter(LogCall.comment), WorkStep.filter(F.action == "skip"))
    router.callback_query.register(finish, StateFilter(LogCall.next_step), CallNextStep.filter())
    router.callback_query.register(cancel, WorkStep.filter(F.action == "cancel"))
    # Typing where a button is expected (commands still work: their routers come first).
    router.message.register(point_to_buttons, StateFilter(LogCall.outcome, LogCall.next_step, NewTask.due))
    # A button of a conversation already finished, cancelled or begun elsewhere.
    for stale in (CallOutcomePick, CallNextStep, WorkStep, NewTaskDue):
        router.callback_query.register(say_stale, stale.filter())
    return router


async def start(
    query: CallbackQuery, callback_data: CallLogStart, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    words = WorkTexts(texts.locale)
    if not may(staff, "calls", "activities", "create"):
        await query.answer(words("denied"), show_alert=True)
        return
    # The same check create_activity makes at the end; asked first so nothing is typed in vain.
    client = await readable_client(staff, callback_data.client_id)
    if client is None:
        await query.answer(words("card.gone"), show_alert=True)
        return
    outcomes = await call_outcomes()
    await state.set_data(
        {
            "tenant_id": staff.tenant.id,
            "client_id": client["id"],
            "outcomes": [str(item.get("key")) for item in outcomes],
            "outcome": None,
            "comment": "",
        }
    )
    if not outcomes:
        await state.set_state(LogCall.comment)
        await _reply(query, words("call.comment"), _comment_keyboard(words))
        return
    await state.set_state(LogCall.outcome)
    builder = InlineKeyboardBuilder()
    for index, item in enumerate(outcomes):
        names = item.get("names") or {}
        builder.button(
            text=label(names.get(words.locale) or names.get("en") or str(item.get("key"))),
            callback_data=CallOutcomePick(index=index),
        )
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    builder.adjust(1)
    await _reply(query, words("call.outcome", client=client["name"]), builder.as_markup())


async def pick_outcome(
    query: CallbackQuery, callback_data: CallOutcomePick, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    keys: list[str] = (data or {}).get("outcomes", [])
    if data is None or not 0 <= callback_data.index < len(keys):
        await say_stale(query, texts, state)
        return
    await state.update_data(outcome=keys[callback_data.index])
    await state.set_state(LogCall.comment)
    await _edit(query, words("call.comment"), _comment_keyboard(words))


async def take_comment(message: Message, staff: Principal, texts: Texts, state: FSMContext) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None:
        await message.answer(words("call.stale"))
        return
    await state.update_data(comment=message.text or "")
    await state.set_state(LogCall.next_step)
    text, keyboard = await _next_step_question(data["outcome"], words)
    await message.answer(text, reply_markup=keyboard)


async def ask_for_text(message: Message, texts: Texts) -> None:
    await message.answer(WorkTexts(texts.locale)("call.text"))


async def skip_comment(query: CallbackQuery, staff: Principal, texts: Texts, state: FSMContext) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None:
        await say_stale(query, texts, state)
        return
    await state.set_state(LogCall.next_step)
    text, keyboard = await _next_step_question(data["outcome"], words)
    await _edit(query, text, keyboard)


async def finish(
    query: CallbackQuery, callback_data: CallNextStep, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None or callback_data.days not in (0, *NEXT_STEP_DAYS):
        await say_stale(query, texts, state)
        return
    zone = zone_of(staff.timezone)
    next_step = None
    if callback_data.days:
        next_step = NextStep(due_at=quick_due(callback_data.days, zone, datetime.now(UTC)))
    call = ActivityCreate(
        kind="call",
        client_id=data["client_id"],
        direction="out",
        outcome=data["outcome"],
        comment=data["comment"],
        next_step=next_step,
    )
    await state.clear()
    try:
        activity = await create_activity(staff, call, origin=BOT)
    except InvalidInput as problem:
        await _edit(query, words("call.invalid", problems=problems_of(problem)), None)
        return
    if activity["next_task_id"] is None:
        await _edit(query, words("call.saved"), None)
        return
    task = await load_task(activity["next_task_id"])
    await _edit(query, words("call.saved_task", title=task["title"], when=words.moment(task["due_at"], zone)), None)


async def point_to_buttons(message: Message, texts: Texts) -> None:
    await message.answer(WorkTexts(texts.locale)("call.buttons"))


async def cancel(query: CallbackQuery, texts: Texts, state: FSMContext) -> None:
    await state.clear()
    await _edit(query, WorkTexts(texts.locale)("cancelled"), None)


async def say_stale(query: CallbackQuery, texts: Texts, state: FSMContext) -> None:
    await query.answer(WorkTexts(texts.locale)("call.stale"), show_alert=True)


# --- helpers ------------------------------------------------------------------------------


async def _conversation(state: FSMContext, staff: Principal) -> dict[str, Any] | None:
    """The conversation's data, or None (and it ends) when it began in another company."""
    data: dict[str, Any] = await state.get_data()
    if data.get("tenant_id") != staff.tenant.id or "client_id" not in data:
        await state.clear()
        return None
    return data


async def _next_step_question(outcome: str | None, words: WorkTexts) -> tuple[str, InlineKeyboardMarkup]:
    required = await next_step_required("call", "done", outcome)
    builder = InlineKeyboardBuilder()
    for days in NEXT_STEP_DAYS:
        builder.button(text=words(f"next.{days}"), callback_data=CallNextStep(days=days))
    if not required:
        builder.button(text=words("next.0"), callback_data=CallNextStep(days=0))
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    builder.adjust(3, 1)
    return words("call.next_required" if required else "call.next"), builder.as_markup()


def _comment_keyboard(words: WorkTexts) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=words("button.skip"), callback_data=WorkStep(action="skip"))
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    return builder.as_markup()


async def _reply(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """A new message under the card (the card stays as it was)."""
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=keyboard)
    await query.answer()


async def _edit(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """The conversation's message now says ``text`` (its old buttons go)."""
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=keyboard)
    await query.answer()
