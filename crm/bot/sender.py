"""The ``telegram.send`` timer: one notification to one linked chat, within Telegram's limits.

The Telegram channel (crm/bot/channel.py) only queues this timer inside the transaction
that produced the notice; here, after that commit, the message is composed from the
company's rows — in a short read of its own, so a task completed in the meantime is not
reminded of, and the client is shown only if the user may read it — and sent.

- **Limits**: about 30 messages a second per bot and one a second per chat. The
  :class:`SendLimiter` hands out send slots; it is shared by everything in one process.
  Several worker processes each keep their own, so N processes may together send up to N
  times the rate: run one worker process for ``telegram.send`` at high volume, or move the
  slots into Redis (a shared counter) when the bot has to send faster than one process can.
- **A busy chat does not hold a worker**: a notice for a chat that was written to less than
  a second ago takes the chat's next free slot and is queued again for then, instead of
  sleeping on the worker's thread while every other chat waits behind it (a user with
  several reminders in one minute made the whole sender crawl at a few messages a second).
  The notice comes back holding its slot (``chat_slot`` in the payload), so a chat's
  notices keep their order and are queued again once each — except under a backlog, when
  the message before may leave later than its slot: then the notice is sent away again,
  and may overtake it.
- **429**: the whole process waits ``retry_after`` (Telegram counts flooding per bot) and
  the notice is queued again for then, so it is not lost and the timer's back-off is not
  spent on a limit.
- **403** (the user blocked the bot, or the chat is gone): the link is marked
  ``blocked_at`` — the channel stops queueing for it, so reminders go by e-mail — and this
  notice is sent by e-mail in the same transaction.
- Network and server errors are transient: the timer retries with back-off.

At least once: a process killed between Telegram's answer and the timer's "done" sends
the message again when the lease runs out (Telegram has no idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup

from crm.bot.reminder_texts import reminder_text
from crm.bot.routers.reminders import reminder_keyboard
from crm.platform.auth import principal_of_user
from crm.platform.errors import NotFound
from crm.platform.tenancy import TenantRef, read_in_tenant, scope_connection, tenant_scope
from crm.platform.timers import RetryLater, Timer, schedule, timer_handler
from crm.tenants.clients.tables import Client
from crm.tenants.notifications.channels import EMAIL, Notice, registered_channel
from crm.tenants.notifications.recipients import Recipient, load_recipient
from crm.tenants.tasks.services import load_task, tasks_in_scope
from crm.tenants.users.scopes import records_in_scope

log = logging.getLogger("crm.bot.sender")

SEND_KIND = "telegram.send"
BOT_RATE = 30  # messages in any second, all chats together
CHAT_INTERVAL = 1.0  # seconds between two messages to one chat
# Telegram counts messages when they reach it, and they reach it later than they leave
# here by a varying delay (a busy event loop, the network): the limits are kept with this
# much room. 0.05 s still let a 429 through now and then on a loaded machine (bench/bot.py).
MARGIN = 0.1
# A chat free within this long is waited for; a chat busy for longer is not (see above).
MAX_CHAT_WAIT = 0.2
# A notice rate-limited this many times goes by e-mail instead (Telegram keeps refusing).
MAX_RATE_LIMITED = 20
PHONES_SHOWN = 3


class SendLimiter:
    """Send slots: at most ``rate`` messages in any second overall and one per
    ``chat_interval`` per chat, each with ``margin`` seconds to spare.

    A message first takes its chat's next free slot (:meth:`take_chat_slot`), then in
    :meth:`wait_turn` the next overall slot, and sleeps until both; concurrent senders
    queue fairly without a lock (nothing awaits between reading and moving the marks).
    Last, the limits are checked once more against the moments messages actually left: a
    sender woken late must not bring the next message closer than Telegram allows, which
    planned slots alone let happen (the 429s of the first bench/bot.py sender run)."""

    def __init__(
        self,
        rate: int = BOT_RATE,
        chat_interval: float = CHAT_INTERVAL,
        *,
        margin: float = MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.window = 1.0 + margin
        self.interval = self.window / rate
        self.chat_interval = chat_interval + margin
        self._clock = clock
        self._sleep = sleep
        self._next_any = 0.0
        self._next_chat: dict[int, float] = {}  # planned: when each chat is free
        self._departed: deque[float] = deque(maxlen=rate)  # the last ``rate`` messages sent
        self._departed_to_chat: dict[int, float] = {}

    def take_chat_slot(self, chat_id: int, *, held: bool = False) -> float:
        """Take ``chat_id``'s next free slot; the seconds until it. A message that ``held``
        its slot already (it was sent away to come back then) takes no other: the seconds
        until the chat is free after the message before it actually left (under a backlog
        messages leave later than their chat's slots planned)."""
        now = self._clock()
        departed = self._departed_to_chat.get(chat_id)
        free = departed + self.chat_interval if departed is not None else now
        if not held:
            free = max(free, self._next_chat.get(chat_id, now))
            self._next_chat[chat_id] = free + self.chat_interval
            if len(self._next_chat) > 10_000:  # chats not written to for a while need no mark
                self._forget_before(now)
        return max(0.0, free - now)

    async def wait_turn(self, chat_id: int, *, chat_slot_held: bool = False) -> None:
        """Sleep until a message to ``chat_id`` may leave, and count it as leaving then."""
        now = self._clock()
        slot = max(now + self.take_chat_slot(chat_id, held=chat_slot_held), self._next_any)
        self._next_any = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)
        while (late := self._still_to_wait(chat_id)) > 0:
            await self._sleep(late)
        # No await since the last check: the message leaves now, as far as the marks know.
        now = self._clock()
        self._departed.append(now)
        self._departed_to_chat[chat_id] = now

    def _still_to_wait(self, chat_id: int) -> float:
        now = self._clock()
        wait = self._departed_to_chat.get(chat_id, -self.chat_interval) + self.chat_interval - now
        if len(self._departed) == self._departed.maxlen:
            wait = max(wait, self._departed[0] + self.window - now)
        return wait

    def _forget_before(self, now: float) -> None:
        self._next_chat = {chat: mark for chat, mark in self._next_chat.items() if mark > now}
        self._departed_to_chat = {
            chat: moment for chat, moment in self._departed_to_chat.items() if moment + self.chat_interval > now
        }

    def pause(self, seconds: float) -> None:
        """Telegram said 429: no slot before ``seconds`` from now."""
        self._next_any = max(self._next_any, self._clock() + seconds)

    def not_delivered(self, chat_id: int) -> None:
        """Telegram refused the message (429, 403, 400): it did not reach the chat, so the
        chat's next message need not wait a second for it."""
        self._next_chat.pop(chat_id, None)
        self._departed_to_chat.pop(chat_id, None)


@dataclass
class TelegramSender:
    """The process's Bot API client and its limiter."""

    bot: Bot
    limiter: SendLimiter

    async def close(self) -> None:
        await self.bot.session.close()


_installed: TelegramSender | None = None


def install_sender(sender: TelegramSender | None) -> None:
    global _installed
    _installed = sender


def installed_sender() -> TelegramSender | None:
    return _installed


@dataclass(frozen=True)
class Outgoing:
    text: str
    keyboard: InlineKeyboardMarkup | None


@timer_handler(SEND_KIND)
async def send_telegram_notice(tenant: TenantRef, timer: Timer) -> None:
    """Send the notification ``payload.notification_id`` to ``payload.chat_id``."""
    payload = timer.payload
    sender = installed_sender()
    if sender is None:
        # This process has no bot configured: e-mail rather than nothing.
        log.warning("telegram.send without a bot in this process; notice %s goes by e-mail", payload)
        await fall_back_to_mail(tenant, payload, blocked=False)
        return
    chat_id = int(payload["chat_id"])
    # The chat's slot is taken before anything is awaited, so a worker running the chat's
    # next notice meanwhile sees the chat busy (a notice whose send is cancelled below
    # leaves a gap in the chat, never two messages too close).
    wait = sender.limiter.take_chat_slot(chat_id, held=bool(payload.get("chat_slot")))
    if wait > MAX_CHAT_WAIT:
        # Not counted as rate-limited: nothing was refused, the chat just had a message.
        await _send_later(timer, {**payload, "chat_slot": True}, wait)
        return
    outgoing = await read_in_tenant(tenant, lambda: compose(tenant, payload))
    if outgoing is None:
        return  # the notice, the user or the task went away, or the task is closed
    await sender.limiter.wait_turn(chat_id, chat_slot_held=True)
    try:
        await sender.bot.send_message(chat_id, outgoing.text, reply_markup=outgoing.keyboard)
    except TelegramRetryAfter as error:
        sender.limiter.pause(error.retry_after)
        sender.limiter.not_delivered(chat_id)
        await _again_after(tenant, timer, error.retry_after)
    except TelegramForbiddenError:
        sender.limiter.not_delivered(chat_id)
        await fall_back_to_mail(tenant, payload, blocked=True)
    except TelegramBadRequest as error:
        sender.limiter.not_delivered(chat_id)
        if "chat not found" not in error.message.lower():
            raise  # a message we built wrong: a programming error, failed at once
        await fall_back_to_mail(tenant, payload, blocked=True)
    except (TelegramNetworkError, TelegramServerError) as error:
        raise RetryLater(f"Telegram: {error.message}") from error


async def _again_after(tenant: TenantRef, timer: Timer, seconds: int) -> None:
    payload = dict(timer.payload)
    payload["rate_limited"] = int(payload.get("rate_limited", 0)) + 1
    payload.pop("chat_slot", None)  # the refusal gave the slot up
    if payload["rate_limited"] > MAX_RATE_LIMITED:
        await fall_back_to_mail(tenant, payload, blocked=False)
        return
    await _send_later(timer, payload, seconds)


async def _send_later(timer: Timer, payload: dict[str, Any], seconds: float) -> None:
    """The notice again as a new timer due in ``seconds``; this one is then done."""
    # Committed before this timer is marked done: the notice always exists somewhere.
    async with timer.pool.acquire() as connection:
        due_at = datetime.now(UTC) + timedelta(seconds=seconds)
        await schedule(connection, SEND_KIND, timer.tenant_id, payload, due_at=due_at)


async def _notice(payload: dict[str, Any]) -> Notice | None:
    row = await scope_connection().fetchrow(
        'SELECT "id", "kind", "title", "body", "entity", "entity_id" FROM "notifications"'
        ' WHERE "id" = $1 AND "user_id" = $2',
        int(payload["notification_id"]),
        int(payload["user_id"]),
    )
    if row is None:
        return None
    return Notice(
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        id=row["id"],
    )


async def compose(tenant: TenantRef, payload: dict[str, Any]) -> Outgoing | None:
    """The message for the notice, in the open tenant scope; None when it should not go.

    A task reminder names the task's client and phones (Telegram turns a ``+7…`` number
    into a tap-to-call link) when the user may read the client, and carries the reminder
    buttons; the task itself must still be open and visible to the user."""
    notice = await _notice(payload)
    user = await load_recipient(int(payload["user_id"]))
    if notice is None or user is None or not user.is_active:
        return None
    lines = [f"🔔 {notice.title}", notice.body]
    if notice.kind != "task_reminder" or notice.entity != "task" or notice.entity_id is None:
        return Outgoing("\n".join(line for line in lines if line), None)
    principal = await principal_of_user(tenant, user.id)
    if principal is None:
        return None
    try:
        task = await load_task(notice.entity_id, await tasks_in_scope(principal, "read"))
    except NotFound:
        return None
    if task["status"] != "open":
        return None
    client: dict[str, Any] | None = None
    if task["client_id"] is not None:
        readable = await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)
        client = (
            await Client.select(Client.id, Client.name, Client.phones)
            .where(Client.id == task["client_id"], readable)
            .first()
        )
    if client is not None:
        lines.append(reminder_text(user.locale, "client", name=client["name"]))
        lines.extend(f"📞 {phone}" for phone in (client["phones"] or [])[:PHONES_SHOWN])
    keyboard = reminder_keyboard(user.locale, task["id"], client["id"] if client else None)
    return Outgoing("\n".join(line for line in lines if line), keyboard)


async def fall_back_to_mail(tenant: TenantRef, payload: dict[str, Any], *, blocked: bool) -> None:
    """Mark the chat blocked (when it is) and send the notice by e-mail instead, in one
    transaction; a user who gets e-mail anyway has had it already."""
    async with tenant_scope(tenant):
        if blocked:
            await scope_connection().execute(
                "UPDATE platform.telegram_links SET blocked_at = now()"
                " WHERE tenant_id = $1 AND user_id = $2 AND chat_id = $3 AND blocked_at IS NULL",
                tenant.id,
                int(payload["user_id"]),
                int(payload["chat_id"]),
            )
            log.info("chat of user %s blocked the bot; reminders go by e-mail", payload["user_id"])
        notice = await _notice(payload)
        user: Recipient | None = await load_recipient(int(payload["user_id"]))
        if notice is None or user is None or not user.is_active or EMAIL in user.channels:
            return
        email = registered_channel(EMAIL)
        assert email is not None  # built in
        await email.deliver(tenant, user, notice)
