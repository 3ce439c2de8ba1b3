"""Any error while handling an update: the user hears an apology, Sentry hears the error.

Sentry events carry the company's slug as a tag and nothing about the person: the SDK's
``before_send`` (crm/platform/observability.py) drops users and masks e-mails and phones,
and the update itself (names, texts) is never attached.
"""

from __future__ import annotations

import logging

import sentry_sdk
from aiogram import Router
from aiogram.types import ErrorEvent, Message

from crm.bot.texts import Texts
from crm.platform.auth import Principal

log = logging.getLogger("crm.bot")


def create_router() -> Router:
    router = Router(name=__name__)
    router.error.register(apologise_and_report)
    return router


async def apologise_and_report(event: ErrorEvent, texts: Texts | None = None, staff: Principal | None = None) -> bool:
    exception = event.exception
    tags = {"channel": "bot"}
    if staff is not None:
        tags.update(tenant=staff.tenant.slug, edition=staff.tenant.edition)
    sentry_sdk.capture_exception(exception, tags=tags)
    # A warning, not an error: Sentry's logging integration would report it a second time.
    log.warning("update %s failed: %s", event.update.update_id, type(exception).__name__, exc_info=exception)
    words = texts or Texts("en")
    try:
        if isinstance(event.update.message, Message):
            await event.update.message.answer(words("error"))
        elif event.update.callback_query is not None:
            await event.update.callback_query.answer(words("error"), show_alert=True)
    except Exception:  # the apology is best effort: Telegram may be what failed
        log.warning("could not tell the user about the failed update %s", event.update.update_id)
    return True
