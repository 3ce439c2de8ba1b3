"""Logging a call from the client card: outcome (the company's list, as buttons) → comment
(text, a voice note or an audio file, or none) → next step (tomorrow, in 3 days, in a week,
a day picked in a calendar or typed, or none where the outcome allows) → the call activity,
its recording as an attachment and its follow-up task, created by the activities API's
service function in one transaction and audited with the channel ``bot``.

The conversation's state lives in the FSM storage (Redis or PostgreSQL), so it survives a
restart; it remembers the company it began in and stops if the user has switched since. A
recording is kept there only as Telegram's file id; its bytes are fetched when the call is
saved (crm/bot/voice_notes.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from crm.bot.callbacks import (
    CalendarBlank,
    CallDueDay,
    CallLogStart,
    CallNextStep,
    CallOutcomePick,
    CallPickDate,
    NewTaskDue,
    WorkStep,
)
from crm.bot.date_picker import calendar_keyboard, months_shown, parse_typed_date
from crm.bot.keyboard_builder import Keyboard
from crm.bot.links import BOT
from crm.bot.routers.tasks import NewTask, problems_of, quick_due
from crm.bot.texts import Texts
from crm.bot.voice_notes import (
    RecordingTooLarge,
    RecordingUnavailable,
    fetch_recording,
    recording_of,
    spoken_length,
    too_large,
)
from crm.bot.work_texts import WorkTexts, label, may
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput
from crm.tenants.activities.attachments import NewAttachment
from crm.tenants.activities.schemas import ActivityCreate, NextStep
from crm.tenants.activities.services import call_outcomes, create_activity, next_step_required
from crm.tenants.tasks.reads import zone_of
from crm.tenants.tasks.services import load_task, readable_client

NEXT_STEP_DAYS = (1, 3, 7)
# A typed date echoed back in "not a date" is cut to this.
MAX_ECHO = 30


class LogCall(StatesGroup):
    outcome = State()
    comment = State()
    next_step = State()
    due_date = State()  # the calendar is shown; a day is pressed or typed


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(start, CallLogStart.filter())
    router.callback_query.register(pick_outcome, StateFilter(LogCall.outcome), CallOutcomePick.filter())
    router.message.register(take_comment, StateFilter(LogCall.comment), F.text, ~F.text.startswith("/"))
    router.message.register(take_recording, StateFilter(LogCall.comment), F.voice | F.audio)
    router.message.register(ask_for_text, StateFilter(LogCall.comment), ~F.text)
    router.callback_query.register(skip_comment, StateFilter(LogCall.comment), WorkStep.filter(F.action == "skip"))
    router.callback_query.register(finish, StateFilter(LogCall.next_step), CallNextStep.filter())
    picking = StateFilter(LogCall.next_step, LogCall.due_date)
    router.callback_query.register(show_calendar, picking, CallPickDate.filter())
    router.callback_query.register(finish_on_day, StateFilter(LogCall.due_date), CallDueDay.filter())
    router.message.register(finish_on_typed_date, StateFilter(LogCall.due_date), F.text, ~F.text.startswith("/"))
    router.callback_query.register(ignore_blank, CalendarBlank.filter())
    router.callback_query.register(cancel, WorkStep.filter(F.action == "cancel"))
    # Typing where a button is expected (commands still work: their routers come first).
    router.message.register(
        point_to_buttons, StateFilter(LogCall.outcome, LogCall.next_step, LogCall.due_date, NewTask.due)
    )
    # A button of a conversation already finished, cancelled or begun elsewhere.
    for stale in (CallOutcomePick, CallNextStep, CallPickDate, CallDueDay, WorkStep, NewTaskDue):
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
            "recording": None,
        }
    )
    if not outcomes:
        await state.set_state(LogCall.comment)
        await _reply(query, words("call.comment"), _comment_keyboard(words))
        return
    await state.set_state(LogCall.outcome)
    builder = Keyboard()
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
    text, keyboard = await _next_step_question(data["outcome"], words, _today(staff))
    await message.answer(text, reply_markup=keyboard)


async def take_recording(message: Message, staff: Principal, texts: Texts, state: FSMContext) -> None:
    """A voice note or audio file as the comment: kept as Telegram's file id until the call
    is saved; the comment text says there is a recording (the card's timeline shows it)."""
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    recording = recording_of(message)
    if data is None or recording is None:
        await message.answer(words("call.stale"))
        return
    if too_large(recording):
        await message.answer(words("call.voice_too_big"), reply_markup=_comment_keyboard(words))
        return
    note = words(f"call.{recording['kind']}_note", duration=spoken_length(recording["duration"]))
    caption = (message.caption or "").strip()
    await state.update_data(recording=recording, comment=f"{note}. {caption}" if caption else note)
    await state.set_state(LogCall.next_step)
    text, keyboard = await _next_step_question(data["outcome"], words, _today(staff))
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
    text, keyboard = await _next_step_question(data["outcome"], words, _today(staff))
    await _edit(query, text, keyboard)


async def finish(
    query: CallbackQuery, callback_data: CallNextStep, staff: Principal, texts: Texts, state: FSMContext, bot: Bot
) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None or callback_data.days not in (0, *NEXT_STEP_DAYS):
        await say_stale(query, texts, state)
        return
    text, keyboard = await _save_call(staff, words, state, data, callback_data.days or None, bot)
    await _edit(query, text, keyboard)


async def show_calendar(
    query: CallbackQuery, callback_data: CallPickDate, staff: Principal, texts: Texts, state: FSMContext
) -> None:
    """The calendar, from the "pick a date" choice or its own ◀ ▶: the month asked for
    (today's month when the button comes from a calendar drawn before a month ended)."""
    words = WorkTexts(texts.locale)
    if await _conversation(state, staff) is None:
        await say_stale(query, texts, state)
        return
    today = _today(staff)
    year, month = callback_data.year, callback_data.month
    if (year, month) not in months_shown(today):
        year, month = today.year, today.month
    await state.set_state(LogCall.due_date)
    await _edit(query, words("call.pick_date"), calendar_keyboard(year, month, today, words))


async def finish_on_day(
    query: CallbackQuery, callback_data: CallDueDay, staff: Principal, texts: Texts, state: FSMContext, bot: Bot
) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None:
        await say_stale(query, texts, state)
        return
    try:
        day = date(callback_data.year, callback_data.month, callback_data.day)
    except ValueError:
        await say_stale(query, texts, state)
        return
    today = _today(staff)
    if day < today:
        # Drawn yesterday (or forged): the calendar again, as of today.
        await query.answer(words("call.date_past"), show_alert=True)
        if isinstance(query.message, Message):
            await query.message.edit_reply_markup(reply_markup=calendar_keyboard(today.year, today.month, today, words))
        return
    text, keyboard = await _save_call(staff, words, state, data, (day - today).days, bot)
    await _edit(query, text, keyboard)


async def finish_on_typed_date(message: Message, staff: Principal, texts: Texts, state: FSMContext, bot: Bot) -> None:
    words = WorkTexts(texts.locale)
    data = await _conversation(state, staff)
    if data is None:
        await message.answer(words("call.stale"))
        return
    today = _today(staff)
    typed = message.text or ""
    day = parse_typed_date(typed, today)
    if day is None:
        echo = " ".join(typed.split())[:MAX_ECHO]
        await message.answer(words("call.date_unknown", text=echo))
        return
    if day < today:
        await message.answer(words("call.date_past"))
        return
    text, keyboard = await _save_call(staff, words, state, data, (day - today).days, bot)
    await message.answer(text, reply_markup=keyboard)


async def ignore_blank(query: CallbackQuery) -> None:
    await query.answer()


async def point_to_buttons(message: Message, texts: Texts) -> None:
    await message.answer(WorkTexts(texts.locale)("call.buttons"))


async def cancel(query: CallbackQuery, texts: Texts, state: FSMContext) -> None:
    await state.clear()
    await _edit(query, WorkTexts(texts.locale)("cancelled"), None)


async def say_stale(query: CallbackQuery, texts: Texts, state: FSMContext) -> None:
    await query.answer(WorkTexts(texts.locale)("call.stale"), show_alert=True)


# --- helpers ------------------------------------------------------------------------------


async def _save_call(
    staff: Principal, words: WorkTexts, state: FSMContext, data: dict[str, Any], days: int | None, bot: Bot
) -> tuple[str, InlineKeyboardMarkup | None]:
    """Create the call (its recording, and a follow-up ``days`` ahead at the quick choices'
    hour, ``quick_due``) and end the conversation; what to tell the user.

    A recording Telegram no longer hands over sends the user back to the comment step with
    the outcome kept, so nothing is saved without it."""
    zone = zone_of(staff.timezone)
    attachments = []
    recording: dict[str, Any] | None = data.get("recording")
    if recording is not None:
        try:
            content = await fetch_recording(bot, recording["file_id"])
        except (RecordingTooLarge, RecordingUnavailable) as problem:
            await state.update_data(recording=None, comment="")
            await state.set_state(LogCall.comment)
            key = "call.voice_too_big" if isinstance(problem, RecordingTooLarge) else "call.voice_failed"
            return words(key), _comment_keyboard(words)
        attachments.append(
            NewAttachment(
                kind=recording["kind"],
                mime_type=recording["mime_type"],
                content=content,
                duration_seconds=recording["duration"],
            )
        )
    next_step = None if days is None else NextStep(due_at=quick_due(days, zone, datetime.now(UTC)))
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
        activity = await create_activity(staff, call, origin=BOT, attachments=attachments)
    except InvalidInput as problem:
        return words("call.invalid", problems=problems_of(problem)), None
    if activity["next_task_id"] is None:
        return words("call.saved"), None
    task = await load_task(activity["next_task_id"])
    return words("call.saved_task", title=task["title"], when=words.moment(task["due_at"], zone)), None


def _today(staff: Principal) -> date:
    """Today on the user's clock."""
    return datetime.now(UTC).astimezone(zone_of(staff.timezone)).date()


async def _conversation(state: FSMContext, staff: Principal) -> dict[str, Any] | None:
    """The conversation's data, or None (and it ends) when it began in another company."""
    data: dict[str, Any] = await state.get_data()
    if data.get("tenant_id") != staff.tenant.id or "client_id" not in data:
        await state.clear()
        return None
    return data


async def _next_step_question(outcome: str | None, words: WorkTexts, today: date) -> tuple[str, InlineKeyboardMarkup]:
    required = await next_step_required("call", "done", outcome)
    builder = Keyboard()
    for days in NEXT_STEP_DAYS:
        builder.button(text=words(f"next.{days}"), callback_data=CallNextStep(days=days))
    builder.button(text=words("next.pick"), callback_data=CallPickDate(year=today.year, month=today.month))
    if not required:
        builder.button(text=words("next.0"), callback_data=CallNextStep(days=0))
    builder.button(text=words("button.cancel"), callback_data=WorkStep(action="cancel"))
    builder.adjust(3, 1)
    return words("call.next_required" if required else "call.next"), builder.as_markup()


def _comment_keyboard(words: WorkTexts) -> InlineKeyboardMarkup:
    builder = Keyboard()
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
