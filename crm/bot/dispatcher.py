"""The bot's assembly: the dispatcher with its middleware and routers, and the Bot client."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseStorage
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats

from crm.bot.middlewares import StaffMiddleware
from crm.bot.routers import (
    calls,
    chat_status,
    clients,
    errors,
    help_command,
    history,
    inline,
    language,
    reminders,
    start,
    tasks,
)
from crm.bot.storage import storage_for
from crm.bot.texts import LOCALES, Texts
from crm.platform.services import Services
from crm.settings import TelegramSettings

COMMANDS = ("start", "today", "week", "find", "help", "company", "lang", "logout")


def create_dispatcher(services: Services, *, storage: BaseStorage | None = None) -> Dispatcher:
    """A dispatcher for the staff bot. ``services`` reaches every handler as a keyword
    argument; the FSM storage defaults to the one the settings choose (Redis or PostgreSQL)."""
    dispatcher = Dispatcher(storage=storage or storage_for(services.settings, services.db.pool), services=services)
    # Registered after aiogram's own (errors, user context, FSM), so the errors router
    # also sees failures of the middleware and handlers get the FSM context.
    dispatcher.update.outer_middleware(StaffMiddleware())
    dispatcher.include_routers(
        *(feature.create_router() for feature in (errors, start, help_command, language, chat_status))
    )
    dispatcher.include_router(reminders.create_router())
    # Daily work. Commands come before the conversations' text steps; plain text outside a
    # conversation is a client search.
    dispatcher.include_routers(*(feature.create_router() for feature in (tasks, clients, history, calls, inline)))
    return dispatcher


def create_bot(settings: TelegramSettings) -> Bot:
    """The Bot API client; ``CRM_TELEGRAM_API_BASE`` points it at another server."""
    if settings.token is None:
        raise ValueError("CRM_TELEGRAM_BOT_TOKEN is not set")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base)) if settings.api_base else None
    return Bot(settings.token.reveal(), session=session)


async def publish_commands(bot: Bot) -> None:
    """The command menu in Telegram, in each of the bot's languages (English by default)."""
    scope = BotCommandScopeAllPrivateChats()
    for locale in LOCALES:
        texts = Texts(locale)
        commands = [BotCommand(command=name, description=texts(f"command.{name}")) for name in COMMANDS]
        await bot.set_my_commands(commands, scope=scope, language_code=None if locale == "en" else locale)
