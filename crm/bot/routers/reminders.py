"""The buttons under a task reminder: Done, Snooze (15 min, 1 h, tomorrow), Open client.

Done and Snooze call the task services of the API (``complete_task``, ``snooze_task``) in
the update's tenant scope, as the sender, audited with the channel ``bot``: the role's
rights apply exactly as in the CRM. Open client is the card of the client lookup
(``ClientCardOpen``, crm/bot/routers/clients.py), which checks the rights again.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from crm.bot.callbacks import ClientCardOpen, ReminderDone, ReminderSnooze
from crm.bot.keyboard_builder import Keyboard
from crm.bot.links import BOT
from crm.bot.reminder_texts import reminder_text
from crm.platform.auth import Principal
from crm.platform.errors import Conflict, InvalidInput, NotFound
from crm.tenants.reminders.schedule import zone_of
from crm.tenants.reminders.snooze import SNOOZE_CHOICES, snooze_task
from crm.tenants.tasks.services import complete_task


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(mark_done, ReminderDone.filter())
    router.callback_query.register(snooze, ReminderSnooze.filter())
    return router


def reminder_keyboard(locale: str, task_id: int, client_id: int | None) -> InlineKeyboardMarkup:
    """Done; the three snoozes in one row; Open client when the user may see the client."""
    builder = Keyboard()
    builder.button(text=reminder_text(locale, "button.done"), callback_data=ReminderDone(task_id=task_id))
    for choice in SNOOZE_CHOICES:
        builder.button(
            text=reminder_text(locale, f"button.snooze.{choice}"),
            callback_data=ReminderSnooze(task_id=task_id, choice=choice),
        )
    sizes = [1, len(SNOOZE_CHOICES)]
    if client_id is not None:
        builder.button(text=reminder_text(locale, "button.client"), callback_data=ClientCardOpen(client_id=client_id))
        sizes.append(1)
    builder.adjust(*sizes)
    return builder.as_markup()


async def mark_done(query: CallbackQuery, callback_data: ReminderDone, staff: Principal) -> None:
    try:
        task, _ = await complete_task(staff, callback_data.task_id, origin=BOT)
    except NotFound:
        await query.answer(reminder_text(staff.locale, "task.gone"), show_alert=True)
        return
    except Conflict:
        await query.answer(reminder_text(staff.locale, "task.closed"), show_alert=True)
        return
    if isinstance(query.message, Message):
        # Without a keyboard: the reminder has been dealt with.
        await query.message.edit_text(reminder_text(staff.locale, "done", title=task["title"]))
    await query.answer()


async def snooze(query: CallbackQuery, callback_data: ReminderSnooze, staff: Principal) -> None:
    try:
        at = await snooze_task(staff, callback_data.task_id, callback_data.choice, origin=BOT)
    except (NotFound, InvalidInput):
        await query.answer(reminder_text(staff.locale, "task.gone"), show_alert=True)
        return
    except Conflict:
        await query.answer(reminder_text(staff.locale, "task.closed"), show_alert=True)
        return
    local = at.astimezone(zone_of(staff.timezone))
    when = local.strftime("%d.%m %H:%M" if staff.locale == "ru" else "%Y-%m-%d %H:%M")
    said = reminder_text(staff.locale, "snoozed", when=when)
    if isinstance(query.message, Message) and query.message.text:
        await query.message.edit_text(f"{query.message.text}\n\n{said}")
    await query.answer(said)
