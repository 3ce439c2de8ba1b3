"""``/telegram``: the signed-in user's Telegram link — whether their account is connected,
and a button that issues a one-time deep link (the same service as the API's
``POST /api/v1/me/telegram-link``), shown as a link and as a QR code drawn in the browser.
When this installation runs no bot, the page says so."""

from __future__ import annotations

from typing import Any

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.console import Console, is_htmx, open_console, render
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.bot.link_requests import DeepLink, link_status, request_deep_link
from crm.bot.runtime import BotRuntime
from crm.platform.errors import ModuleNotInEdition
from crm.platform.security import PUBLIC
from crm.tenants.reminders.schedule import zone_of

MODULE = "bot"

register_page("/telegram")

add_texts(
    {
        "ru": {
            "telegram.title": "Telegram",
            "telegram.intro": "Подключите Telegram, чтобы получать напоминания о задачах, записывать итоги звонков "
            "и открывать карточки клиентов в боте.",
            "telegram.linked": "Telegram подключён {since}.",
            "telegram.blocked": "Бот заблокирован в вашем Telegram — напоминания пока приходят на почту. "
            "Напишите боту, чтобы снова получать их там.",
            "telegram.not_linked": "Telegram ещё не подключён.",
            "telegram.relink": "Подключить другой аккаунт Telegram",
            "telegram.get_link": "Получить ссылку для подключения",
            "telegram.link_intro": "Откройте ссылку на телефоне с Telegram (или отсканируйте код) и нажмите «Старт».",
            "telegram.open": "Открыть в Telegram",
            "telegram.qr": "QR-код ссылки для подключения Telegram",
            "telegram.expires": "Ссылка одноразовая и действует до {time}. Новая ссылка отменяет прежние.",
            "telegram.not_configured": "В этой установке Relay CRM бот Telegram не настроен. "
            "Обратитесь к администратору (переменная CRM_TELEGRAM_BOT_TOKEN).",
            "telegram.unavailable": "Telegram сейчас не отвечает. Попробуйте через минуту.",
        },
        "en": {
            "telegram.title": "Telegram",
            "telegram.intro": "Connect Telegram to get task reminders, log call results and open client cards "
            "in the bot.",
            "telegram.linked": "Telegram is connected since {since}.",
            "telegram.blocked": "The bot is blocked in your Telegram, so reminders come by e-mail for now. "
            "Write to the bot to get them there again.",
            "telegram.not_linked": "Telegram is not connected yet.",
            "telegram.relink": "Connect another Telegram account",
            "telegram.get_link": "Get a link to connect",
            "telegram.link_intro": "Open the link on a phone with Telegram (or scan the code) and press Start.",
            "telegram.open": "Open in Telegram",
            "telegram.qr": "QR code of the link that connects Telegram",
            "telegram.expires": "The link works once, until {time}. A new link cancels the earlier ones.",
            "telegram.not_configured": "This Relay CRM installation has no Telegram bot configured. "
            "Ask your administrator (the CRM_TELEGRAM_BOT_TOKEN setting).",
            "telegram.unavailable": "Telegram is not answering right now. Try again in a minute.",
        },
    }
)


def _require_bot_module(console: Console) -> None:
    # Any signed-in user may connect their own account (the API route is AUTHENTICATED);
    # only the edition decides.
    if not console.has_module(MODULE):
        raise ModuleNotInEdition(f"The {MODULE!r} module is not part of this edition.", module=MODULE)


def _runtime(request: Request[Any, Any, Any]) -> BotRuntime | None:
    runtime: BotRuntime | None = getattr(request.app.state, "telegram", None)
    return runtime


class TelegramPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    async def _page(
        self,
        console: Console,
        *,
        link: DeepLink | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response[str]:
        status = await link_status(console.services.db.pool, console.user)
        return render(
            console,
            "telegram.html",
            status_code=status_code,
            configured=_runtime(console.request) is not None,
            status=status,
            link=link,
            error=error,
            zone=zone_of(console.user.timezone),
        )

    @get("/telegram", opt=PUBLIC)
    async def telegram(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        _require_bot_module(console)
        return await self._page(console)

    @post("/telegram/link", opt=PUBLIC)
    async def issue_link(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        _require_bot_module(console)
        runtime = _runtime(request)
        if runtime is None:
            return await self._page(console, status_code=409)
        try:
            link = await request_deep_link(runtime, console.user, origin=console.origin())
        except (TelegramAPIError, TelegramNetworkError):
            # The bot's name is asked of Telegram once; it may be unreachable that moment.
            return await self._page(console, error=console.texts("telegram.unavailable"), status_code=503)
        # The link is a one-time secret: shown in this answer only (no-store), never in a URL.
        if is_htmx(request):
            return render(console, "telegram_link.html", link=link, zone=zone_of(console.user.timezone))
        return await self._page(console, link=link)


CONTROLLERS: list[type] = [TelegramPageController]
