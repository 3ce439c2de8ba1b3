"""``/help``: what the bot can do."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from crm.bot.texts import Texts


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(show_help, Command("help"))
    return router


async def show_help(message: Message, texts: Texts) -> None:
    await message.answer(texts("help"))
