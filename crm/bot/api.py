"""``POST /api/v1/me/telegram-link``: a one-time deep link that connects the caller's
Telegram account to their user (valid 15 minutes, used once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_201_CREATED

from crm.bot.link_requests import request_deep_link
from crm.bot.runtime import BotRuntime
from crm.platform.auth import Principal
from crm.platform.errors import CrmError
from crm.platform.security import AUTHENTICATED, origin_of, requires_module


class TelegramNotConfigured(CrmError):
    code = "telegram-not-configured"
    status = 409
    title = "The Telegram bot is not configured"


class TelegramLink(msgspec.Struct):
    url: str
    expires_at: datetime


class TelegramLinkController(Controller):
    path = "/api/v1/me/telegram-link"
    tags = ["me"]
    guards = [requires_module("bot")]

    @post(
        "/",
        opt=AUTHENTICATED,
        status_code=HTTP_201_CREATED,
        operation_id="createTelegramLink",
        summary="A one-time link that connects your Telegram account (15 minutes, single use)",
        description="Open the `url` in Telegram (or show it as a QR code) and press Start. A new link "
        "replaces your unused earlier ones.",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], state: State
    ) -> TelegramLink:
        runtime: BotRuntime | None = state.get("telegram")
        if runtime is None:
            raise TelegramNotConfigured("This installation has no Telegram bot (CRM_TELEGRAM_BOT_TOKEN is not set).")
        link = await request_deep_link(runtime, principal, origin=origin_of(request))
        return TelegramLink(url=link.url, expires_at=link.expires_at)
