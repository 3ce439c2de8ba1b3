"""``POST /webhooks/telegram/{path_secret}``: Telegram delivers updates here in webhook mode.

The path's secret and the ``X-Telegram-Bot-Api-Secret-Token`` header (the secret given to
``setWebhook``) are both checked in constant time: a wrong path is 404, a wrong header 403.
The update is handled before answering (Telegram waits up to a minute, and resends an
update that got no 2xx); a failure inside a handler is answered by the errors router, so
it still gets 200 and is not resent over and over.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK
from pydantic import ValidationError

from crm.bot.runtime import WEBHOOK_PATH, BotRuntime
from crm.platform.errors import FieldError, Forbidden, InvalidInput, NotFound
from crm.platform.security import PUBLIC

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret


class TelegramWebhookController(Controller):
    path = WEBHOOK_PATH
    tags = ["webhooks"]

    @post(
        "/{path_secret:str}",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        include_in_schema=False,
        operation_id="telegramWebhook",
        summary="Updates from Telegram (webhook mode)",
    )
    async def receive(self, request: Request[Any, Any, Any], path_secret: FromPath[str], state: State) -> None:
        runtime: BotRuntime | None = state.get("telegram")
        expected = runtime.path_secret if runtime is not None else None
        if runtime is None or expected is None or not hmac.compare_digest(path_secret.encode(), expected.encode()):
            raise NotFound("There is nothing here.")
        assert runtime.settings.webhook_secret is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), runtime.settings.webhook_secret.reveal().encode()):
            raise Forbidden("The Telegram secret token is missing or wrong.")
        try:
            update = Update.model_validate(msgspec.json.decode(await request.body()), context={"bot": runtime.bot})
        except (msgspec.DecodeError, ValidationError):
            raise InvalidInput(
                "The body is not a Telegram update.", errors=[FieldError("body", "must be a Telegram Update object")]
            ) from None
        result: TelegramMethod[Any] | None = await runtime.dispatcher.feed_webhook_update(runtime.bot, update)
        if isinstance(result, TelegramMethod):
            # A handler that returned a method instead of calling it: call it now.
            await runtime.dispatcher.silent_call_request(runtime.bot, result)
