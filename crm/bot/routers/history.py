"""The client card's History and Deals buttons.

History pages through every activity on the client the user may see, newest first,
``PAGE`` at a time, with an "Older" button that carries where the page ended (a keyset:
the time and id of its last activity, so a call logged meanwhile never shifts a page).
Deals lists the client's deals the user may see — open ones first, then the closed —
with their stage, amount and status. Both use the API's scope conditions, so the bot
shows exactly what the activities and deals lists would.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from crm.bot.callbacks import ClientCardOpen, ClientDeals, ClientHistory
from crm.bot.keyboard_builder import Keyboard
from crm.bot.routers.clients import activity_line
from crm.bot.texts import Texts
from crm.bot.work_texts import MAX_MESSAGE, WorkTexts, label, may
from crm.platform.auth import Principal
from crm.tenants.activities.services import activities_in_scope, call_outcomes
from crm.tenants.activities.tables import Activity
from crm.tenants.deals.services import OWNERS
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.reads import zone_of
from crm.tenants.tasks.services import readable_client
from crm.tenants.users.scopes import records_in_scope

PAGE = 10
MAX_DEALS = 20


def create_router() -> Router:
    router = Router(name=__name__)
    router.callback_query.register(show_history, ClientHistory.filter())
    router.callback_query.register(show_deals, ClientDeals.filter())
    return router


async def show_history(query: CallbackQuery, callback_data: ClientHistory, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    client = await readable_client(staff, callback_data.client_id)
    if client is None or not may(staff, "calls", "activities", "read"):
        await query.answer(words("card.gone" if client is None else "denied"), show_alert=True)
        return
    select = Activity.select(
        Activity.id,
        Activity.kind,
        Activity.occurred_at,
        Activity.outcome,
        Activity.comment,
        Activity.author_id.name.as_alias("author"),
    ).where(Activity.client_id == client["id"], await activities_in_scope(staff, "read"))
    if callback_data.before_id:
        before = datetime.fromtimestamp(callback_data.before_us / 1_000_000, UTC)
        select = select.where(
            (Activity.occurred_at < before)
            | ((Activity.occurred_at == before) & (Activity.id < callback_data.before_id))
        )
    rows = await select.order_by(Activity.occurred_at, Activity.id, ascending=False).limit(PAGE + 1)
    page, more = rows[:PAGE], len(rows) > PAGE
    heading = words("history.title" if not callback_data.before_id else "history.older", client=client["name"])
    if not page:
        await _answer(query, words("history.empty", client=client["name"]), _back(client["id"], words))
        return
    outcomes = {item.get("key"): item.get("names", {}) for item in await call_outcomes()}
    zone = zone_of(staff.timezone)
    lines = [heading, ""]
    for row in page:
        line = activity_line(row["kind"], row["occurred_at"], row["outcome"], row["comment"], outcomes, zone, words)
        lines.append(line + (f" ({row['author']})" if row["author"] else ""))
    builder = Keyboard()
    if more:
        last = page[-1]
        moment = int(last["occurred_at"].timestamp() * 1_000_000)
        builder.button(
            text=words("button.older"),
            callback_data=ClientHistory(client_id=client["id"], before_us=moment, before_id=last["id"]),
        )
    builder.button(text=words("button.card"), callback_data=ClientCardOpen(client_id=client["id"]))
    builder.adjust(2)
    await _answer(query, _fit("\n".join(lines)), builder.as_markup())


async def show_deals(query: CallbackQuery, callback_data: ClientDeals, staff: Principal, texts: Texts) -> None:
    words = WorkTexts(texts.locale)
    client = await readable_client(staff, callback_data.client_id)
    if client is None or not may(staff, "deals", "deals", "read"):
        await query.answer(words("card.gone" if client is None else "denied"), show_alert=True)
        return
    rows = (
        await Deal.select(
            Deal.id,
            Deal.title,
            Deal.amount,
            Deal.currency,
            Deal.status,
            Deal.stage_id.names.as_alias("stage_names"),
            Deal.stage_id.key.as_alias("stage_key"),
        )
        .where(Deal.client_id == client["id"], await records_in_scope(staff, "deals", "read", *OWNERS))
        .order_by(Deal.stage_changed_at, ascending=False)
        .order_by(Deal.id, ascending=False)
        .limit(MAX_DEALS + 1)
        .output(load_json=True)
    )
    if not rows:
        await _answer(query, words("deals.empty", client=client["name"]), _back(client["id"], words))
        return
    # Open deals first: they are the work; closed ones are history.
    rows.sort(key=lambda row: row["status"] != "open")
    lines = [words("deals.title", client=client["name"]), ""]
    for row in rows[:MAX_DEALS]:
        names = row["stage_names"] or {}
        stage = names.get(words.locale) or names.get("en") or row["stage_key"]
        mark = {"won": "✅", "lost": "✖️"}.get(row["status"], "•")
        lines.append(f"{mark} {row['title']} — {row['amount']} {row['currency']} — {stage}")
    if len(rows) > MAX_DEALS:
        lines.append(words("deals.more"))
    await _answer(query, _fit("\n".join(lines)), _back(client["id"], words))


def _back(client_id: int, words: WorkTexts) -> InlineKeyboardMarkup:
    builder = Keyboard()
    builder.button(text=label(words("button.card")), callback_data=ClientCardOpen(client_id=client_id))
    return builder.as_markup()


def _fit(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


async def _answer(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    if isinstance(query.message, Message):
        await query.message.answer(text, reply_markup=keyboard)
    await query.answer()
