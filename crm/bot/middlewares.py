"""The outer middleware every update passes: who is writing, in which company.

The sender's Telegram account is resolved to its active link (tenant, user) once, here;
nothing the sender types chooses the company. Unknown senders, deactivated users and
suspended companies all get the same polite refusal, so the bot reveals nothing about
who is a customer. For a known user the update runs inside the company's tenant scope
(one transaction) with the user's principal and language in the handler's data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, InlineQuery, Message, TelegramObject, Update, User

from crm.bot.links import ActiveLink, active_link, mark_blocked
from crm.bot.texts import Texts, locale_of_telegram
from crm.platform.auth import principal_of_user
from crm.platform.observability import bind_log_tenant
from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def is_link_request(update: Update) -> bool:
    """``/start <code>``: the one thing someone without a link may send (the deep link)."""
    message = update.message
    if message is None or not message.text:
        return False
    command, _, payload = message.text.partition(" ")
    return command.split("@")[0] == "/start" and bool(payload.strip())


def blocks_the_bot(update: Update) -> bool:
    """The user stopped the bot (Telegram's my_chat_member with status "kicked")."""
    change = update.my_chat_member
    return change is not None and change.new_chat_member.status == "kicked"


class StaffMiddleware(BaseMiddleware):
    """Resolve the sender to (tenant, user), refuse strangers, open the tenant scope."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        sender: User | None = data.get("event_from_user")
        chat = data.get("event_chat")
        # Staff talk to the bot in private; groups, channels and other bots are ignored.
        if sender is None or sender.is_bot or (chat is not None and chat.type != "private"):
            return None
        data["texts"] = Texts(locale_of_telegram(sender.language_code))
        data["staff"] = None
        if is_link_request(event):
            # Linking is platform work: the code names its own company, whose scope the
            # handler opens (never inside the scope of the company active now).
            return await handler(event, data)
        services: Services = data["services"]
        link = await active_link(services.db.pool, sender.id)
        if link is None or not link.tenant.is_active:
            return await refuse(event, data["texts"])
        if link.blocked and not blocks_the_bot(event):
            # Marked blocked by a refused send; writing again (or unblocking) undoes it,
            # so reminders come to Telegram again instead of by e-mail.
            await mark_blocked(services.db.pool, sender.id, False)
        edition = services.editions.get(link.tenant.edition)
        if edition is not None and not edition.has_module("bot"):
            return await answer(event, data["texts"]("module.off"))
        try:
            return await self._as_staff(handler, event, data, link)
        except asyncpg.InvalidCachedStatementError:
            # A statement prepared for a table's previous shape while the company migrates
            # (docs/architecture.md): the transaction rolled back, so running the update
            # once more in a fresh one is safe.
            return await self._as_staff(handler, event, data, link)

    async def _as_staff(self, handler: Handler, event: Update, data: dict[str, Any], link: ActiveLink) -> Any:
        async with tenant_scope(link.tenant):
            principal = await principal_of_user(link.tenant, link.user_id)
            if principal is not None:
                data["staff"] = principal
                data["link"] = link
                data["texts"] = Texts(principal.locale)
                bind_log_tenant(link.tenant.slug)
                return await handler(event, data)
        # Deactivated (its link normally goes with it): the same words as for a stranger.
        return await refuse(event, data["texts"])


async def refuse(update: Update, texts: Texts) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(texts("refused.short"), show_alert=True)
    elif update.inline_query is not None:
        await update.inline_query.answer([], cache_time=0, is_personal=True)
    else:
        await answer(update, texts("refused"))


async def answer(update: Update, text: str) -> None:
    """Say ``text`` where the update came from (a message, or a button's alert)."""
    event: Message | CallbackQuery | InlineQuery | None = update.message or update.callback_query
    if isinstance(event, Message):
        await event.answer(text)
    elif isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
