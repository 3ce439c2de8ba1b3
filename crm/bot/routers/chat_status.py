"""The user blocked or unblocked the bot (Telegram's ``my_chat_member`` update).

A block is recorded at once, so reminders fall back to e-mail before a send is refused;
unblocking is undone by the middleware, like any update from a blocked chat.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import ChatMemberUpdated

from crm.bot.links import mark_blocked
from crm.platform.services import Services


def create_router() -> Router:
    router = Router(name=__name__)
    router.my_chat_member.register(status_changed)
    return router


async def status_changed(event: ChatMemberUpdated, services: Services) -> None:
    if event.new_chat_member.status == "kicked":
        await mark_blocked(services.db.pool, event.from_user.id, True)
