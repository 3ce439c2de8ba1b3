"""``crm bot``: the bot by long polling, for development and ``crm up`` (production takes
updates on the web app's webhook route instead)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

from crm.bot.dispatcher import publish_commands
from crm.bot.runtime import BotRuntime, create_runtime
from crm.platform.observability import configure_logging, init_sentry
from crm.platform.services import open_services
from crm.settings import Settings, load_settings

log = logging.getLogger("crm.bot")
# Set by the supervisor of `crm up` (crm/platform/worker/processes.py) in its children.
PARENT_ENV = "CRM_SUPERVISOR_PID"


def command_bot(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    mode = settings.telegram.mode
    if mode == "off":
        print("crm bot: set CRM_TELEGRAM_BOT_TOKEN (from @BotFather) to run the bot", file=sys.stderr)
        return 2
    if mode == "webhook":
        print(
            "crm bot: CRM_TELEGRAM_WEBHOOK_SECRET is set, so Telegram delivers updates to the web app's webhook;"
            " unset it to poll instead",
            file=sys.stderr,
        )
        return 2
    init_sentry(settings)
    asyncio.run(_run(settings))
    return 0


async def _run(settings: Settings) -> None:
    services = await open_services(settings)
    runtime = create_runtime(services, settings.telegram)
    watcher = asyncio.create_task(_stop_when_orphaned(runtime))
    try:
        await poll_updates(runtime, handle_signals=True)
    finally:
        watcher.cancel()
        await runtime.close()
        await services.db.close()


async def poll_updates(runtime: BotRuntime, *, handle_signals: bool = False) -> None:
    """Take updates by long polling until stopped (``dispatcher.stop_polling()`` or a signal).
    A webhook left registered would make Telegram refuse getUpdates, so it is removed."""
    await runtime.bot.delete_webhook(drop_pending_updates=False)
    await publish_commands(runtime.bot)
    await runtime.dispatcher.start_polling(
        runtime.bot,
        handle_signals=handle_signals,
        close_bot_session=False,
        allowed_updates=runtime.dispatcher.resolve_used_update_types(),
    )


async def _stop_when_orphaned(runtime: BotRuntime) -> None:
    """Under ``crm up``: stop when the supervising process is gone (it may have been killed)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    # Polled: nothing signals a parent's death to its child.
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != int(parent):
            break
    log.warning("the supervising process %s is gone; stopping", parent)
    with contextlib.suppress(RuntimeError):
        await runtime.dispatcher.stop_polling()
