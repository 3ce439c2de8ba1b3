"""The bot inside the web app: built at start-up when a token is set, registered as the
webhook in webhook mode, closed at shutdown."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError

from crm.bot.channel import install_telegram, uninstall_telegram
from crm.bot.dispatcher import create_bot, create_dispatcher, publish_commands
from crm.platform.services import Services, services_of
from crm.settings import Settings, TelegramSettings

log = logging.getLogger("crm.bot")
WEBHOOK_PATH = "/webhooks/telegram"


def webhook_path_secret(settings: TelegramSettings) -> str:
    """The secret part of the webhook's path, derived from the webhook secret: a guessed
    URL finds nothing even before the header is checked."""
    assert settings.webhook_secret is not None
    key = settings.webhook_secret.reveal().encode()
    return hmac.new(key, b"relay-crm telegram webhook path", hashlib.sha256).hexdigest()[:32]


@dataclass
class BotRuntime:
    bot: Bot
    dispatcher: Dispatcher
    settings: TelegramSettings
    _username: str | None = field(default=None)

    @property
    def path_secret(self) -> str | None:
        return webhook_path_secret(self.settings) if self.settings.mode == "webhook" else None

    async def username(self) -> str:
        """The bot's @username for deep links: configured, or asked of Telegram once."""
        if self._username is None:
            self._username = self.settings.bot_username or (await self.bot.me()).username or ""
        return self._username

    async def register_webhook(self, public_url: str) -> None:
        """Tell Telegram where to post updates, with the secret it must send back."""
        assert self.settings.webhook_secret is not None
        await self.bot.set_webhook(
            url=f"{public_url.rstrip('/')}{WEBHOOK_PATH}/{self.path_secret}",
            secret_token=self.settings.webhook_secret.reveal(),
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )

    async def close(self) -> None:
        await self.dispatcher.storage.close()
        await self.bot.session.close()


def create_runtime(services: Services, settings: TelegramSettings) -> BotRuntime:
    return BotRuntime(bot=create_bot(settings), dispatcher=create_dispatcher(services), settings=settings)


def telegram_lifespan(settings: Settings) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A Litestar lifespan hook: ``app.state.telegram`` is the :class:`BotRuntime`, or None
    without a token. Runs after the app's own hook, which opens the services."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if settings.telegram.token is None:
            app.state.telegram = None
            yield
            return
        runtime = create_runtime(services_of(app.state), settings.telegram)
        app.state.telegram = runtime
        # Timers run here when the app runs them itself (tests, in-process benches).
        install_telegram(settings.telegram)
        if settings.telegram.mode == "webhook":
            # Every web instance registers the same URL, so this is idempotent; a failure
            # (Telegram unreachable, an http:// public URL) must not stop the API.
            try:
                await runtime.register_webhook(settings.web.public_url)
                await publish_commands(runtime.bot)
            except (TelegramAPIError, TelegramNetworkError) as exc:
                log.warning("could not register the Telegram webhook: %s", exc)
        try:
            yield
        finally:
            await uninstall_telegram()
            await runtime.close()

    return lifespan
