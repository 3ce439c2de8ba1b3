"""Client lookup: ``/find text``, or just a name, phone or tax id typed in the chat → the
clients the user may see, as buttons → the client card.

The search and the card are the API's own service functions (``search``, ``client_card``),
so the role's scope decides what is found and what a card shows; a client out of scope
(or of another company) reads exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from crm.bot.callbacks import CallLogStart, ClientCardOpen, ClientDeals, ClientHistory, NewTaskStart, TaskReassign
from crm.bot.keyboard_builder import Keyboard
from crm.bot.routers.tasks import may_reassign
from crm.bot.texts import Texts
from crm.bot.work_texts import MAX_MESSAGE, WorkTexts, label, may
from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.tenants.activities.services import call_outcomes
from crm.tenants.card.schemas import CardTask, ClientCard
from crm.tenants.card.services import client_card
from crm.tenants.search.services import CLIENTS_ONLY, Hit, search
from crm.tenants.tasks.reads import zone_of

# The search API's bounds on the text typed.
MIN_QUERY, MAX_QUERY = 2, 200
RESULTS = 8
# The card lists the first few of each part; the CRM has the rest.
SHOWN = 5
MAX_COMMENT_SHOWN = 80


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(find_command, Command("find"))
    # Plain text outside a conversation (a conversation's steps are matched first).
    router.message.register(find_typed, StateFilter(None), F.text, ~F.text.startswith("/"))
    router.callback_query.register(open_card, ClientCardOpen.filter())
    return router


async def find_command(message: Message, command: CommandObject, staff: Principal, texts: Texts) -> None:
    await find(message, command.args or "", staff, WorkTexts(texts.locale))


async def find_typed(message: Message, staff: Principal, texts: Texts) -> None:
    await find(message, message.text or "", staff, WorkTexts(texts.locale))


async def find(message: Message, typed: str, staff: Principal, words: WorkTexts) -> None:
    text = " ".join(typed.split())
    if not text:
        await message.answer(words("find.ask"))
        return
    if not MIN_QUERY <= len(text) <= MAX_QUERY:
        await message.answer(words("find.length"))
        return
    if not may(staff, "clients", "clients", "read"):
        await message.answer(words("denied"))
        return
    hits = await search(staff, text, RESULTS, only=CLIENTS_ONLY)
    if not hits:
        await message.answer(words("find.none", q=text))
        return
    builder = Keyboard()
    for hit in hits:
        builder.button(
            text=label(" · ".join([hit.title, *contacts_of(hit)])), callback_data=ClientCardOpen(client_id=hit.id)
        )
    builder.adjust(1)
    await message.answer(words("find.found", q=text), reply_markup=builder.as_markup())


def contacts_of(hit: Hit) -> list[str]:
    """A client hit's phone and e-mail (its subtitle without the kind, which is a key)."""
    return [part for part in hit.subtitle.split(" · ")[1:] if part]


async def open_card(query: CallbackQuery, callback_data: ClientCardOpen, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    if not may(staff, "clients", "clients", "read"):
        await query.answer(words("denied"), show_alert=True)
        return
    try:
        card = await client_card(staff, callback_data.client_id)
    except NotFound:
        await query.answer(words("card.gone"), show_alert=True)
        return
    if isinstance(query.message, Message):
        text = await card_text(card, staff, words)
        await query.message.answer(text, reply_markup=card_keyboard(card.client.id, card.tasks, staff, words))
    await query.answer()


async def card_text(card: ClientCard, staff: Principal, words: WorkTexts) -> str:
    """The card as plain text: Telegram turns the phone numbers into tap-to-call links."""
    zone = zone_of(staff.timezone)
    client = card.client
    lines = [client.name]
    if card.responsible is not None:
        lines.append(words("card.responsible", name=card.responsible.name))
    lines += [f"📞 {phone}" for phone in client.phones] + [f"✉️ {email}" for email in client.emails]
    if card.contacts:
        lines += ["", words("card.contacts")]
        for contact in card.contacts[:SHOWN]:
            who = ", ".join(part for part in (contact.name, contact.position) if part)
            lines.append(f"• {who}" + (f" — {', '.join(contact.phones)}" if contact.phones else ""))
    if card.deals:
        lines += ["", words("card.deals")]
        for deal in card.deals[:SHOWN]:
            stage = deal.stage.names.get(words.locale) or deal.stage.names.get("en") or deal.stage.key
            lines.append(f"• {deal.title} — {deal.amount} {deal.currency} — {stage}")
    if card.timeline:
        outcomes = {item.get("key"): item.get("names", {}) for item in await call_outcomes()}
        lines += ["", words("card.activities")]
        for activity in card.timeline[:SHOWN]:
            lines.append(
                activity_line(
                    activity.kind, activity.occurred_at, activity.outcome, activity.comment, outcomes, zone, words
                )
            )
    if card.tasks:
        now = datetime.now(UTC)
        lines += ["", words("card.tasks")]
        for task in card.tasks[:SHOWN]:
            mark = "❗" if task.due_at < now else "•"
            lines.append(f"{mark} {words.moment(task.due_at, zone)} {task.title} ({task.assignee.name})")
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def activity_line(
    kind: str,
    occurred_at: datetime,
    outcome: str | None,
    comment: str,
    outcomes: dict[Any, dict[str, str]],
    zone: ZoneInfo,
    words: WorkTexts,
) -> str:
    """``• пт 27.11 10:00 — Звонок — Договорились — перезвонить…``: one activity in a list."""
    parts = [words.moment(occurred_at, zone), words(f"kind.{kind}")]
    if outcome:
        names = outcomes.get(outcome) or {}
        parts.append(names.get(words.locale) or names.get("en") or outcome)
    flat = " ".join(comment.split())
    if flat:
        parts.append(flat[:MAX_COMMENT_SHOWN] + ("…" if len(flat) > MAX_COMMENT_SHOWN else ""))
    return "• " + " — ".join(parts)


def card_keyboard(
    client_id: int, tasks: list[CardTask], staff: Principal, words: WorkTexts
) -> InlineKeyboardMarkup | None:
    """Log call / New task and History / Deals, each where the edition and the role allow
    it; Reassign for the open tasks shown when the role may give tasks to others."""
    builder = Keyboard()
    rows = []
    for pair in (
        (
            ("calls", "activities", "create", "button.call", CallLogStart(client_id=client_id)),
            ("tasks", "tasks", "create", "button.task", NewTaskStart(client_id=client_id)),
        ),
        (
            ("calls", "activities", "read", "button.history", ClientHistory(client_id=client_id)),
            ("deals", "deals", "read", "button.deals", ClientDeals(client_id=client_id)),
        ),
    ):
        allowed = [(key, data) for module, entity, action, key, data in pair if may(staff, module, entity, action)]
        for key, data in allowed:
            builder.button(text=words(key), callback_data=data)
        if allowed:
            rows.append(len(allowed))
    if may_reassign(staff):
        for task in tasks[:SHOWN]:
            builder.button(
                text=label(words("button.reassign", title=task.title)), callback_data=TaskReassign(task_id=task.id)
            )
            rows.append(1)
    builder.adjust(*(rows or [1]))
    return builder.as_markup() if list(builder.buttons) else None
