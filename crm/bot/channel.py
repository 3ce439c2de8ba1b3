"""The ``telegram`` notification channel (crm/tenants/notifications/channels.py).

``deliver`` runs inside the transaction of the work that produced the notice, so it only
*queues*: a ``telegram.send`` timer with ids (notification, user, chat) is added to that
transaction and sent after commit by crm/bot/sender.py. A user without a linked chat in
this company, or whose chat blocked the bot, raises :class:`ChannelUnavailable`: the
caller sends the notice by e-mail instead.

A process that runs notification work (``crm worker``; the web app when it runs timers
in-process) calls :func:`install_telegram` at start with the Telegram settings; without a
token it does nothing and the channel stays unregistered, so notices go by e-mail.
"""

from __future__ import annotations

from crm.bot.dispatcher import create_bot
from crm.bot.sender import SEND_KIND, SendLimiter, TelegramSender, install_sender, installed_sender
from crm.platform.tenancy import TenantRef, scope_connection
from crm.platform.timers import schedule
from crm.settings import TelegramSettings
from crm.tenants.notifications.channels import (
    TELEGRAM,
    ChannelUnavailable,
    Notice,
    register_channel,
    unregister_channel,
)
from crm.tenants.notifications.recipients import Recipient


class TelegramChannel:
    name = TELEGRAM

    async def deliver(self, tenant: TenantRef, user: Recipient, notification: Notice) -> None:
        if notification.id is None:
            # The sender reads the console row; notify() always stores it first.
            raise ChannelUnavailable("the notice has no console row to send")
        connection = scope_connection()
        link = await connection.fetchrow(
            "SELECT chat_id, blocked_at FROM platform.telegram_links WHERE tenant_id = $1 AND user_id = $2",
            tenant.id,
            user.id,
        )
        if link is None:
            raise ChannelUnavailable("no Telegram chat is linked")
        if link["blocked_at"] is not None:
            raise ChannelUnavailable("the user blocked the bot")
        payload = {"notification_id": notification.id, "user_id": user.id, "chat_id": link["chat_id"]}
        await schedule(connection, SEND_KIND, tenant.id, payload)


def install_telegram(settings: TelegramSettings, *, limiter: SendLimiter | None = None) -> TelegramSender | None:
    """Give this process its Bot API client and register the channel; None (and nothing
    registered) without a token. Close it with :func:`uninstall_telegram`."""
    if settings.token is None:
        unregister_channel(TELEGRAM)
        install_sender(None)
        return None
    sender = TelegramSender(create_bot(settings), limiter or SendLimiter())
    install_sender(sender)
    register_channel(TelegramChannel())
    return sender


async def uninstall_telegram() -> None:
    unregister_channel(TELEGRAM)
    sender = installed_sender()
    install_sender(None)
    if sender is not None:
        await sender.close()
