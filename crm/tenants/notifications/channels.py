"""Delivery channels: where a notification goes besides the console list.

A :class:`Channel` has a ``name`` and ``async deliver(tenant, user, notification)``. It is
called inside the tenant transaction of the work that produced the notice, so a channel
that talks to the outside world must only *queue* there (the e-mail channel queues a
message through the mail interface, sent after commit); the transaction's
``reminders_sent`` row is what makes a notice exactly-once.

- ``console`` stores the row ``GET /api/v1/notifications`` lists; every notification
  reaches it, whatever the user chose.
- ``email`` queues a message with ``crm.tenants.mail.outbox.queue_mail``.
- ``telegram`` is registered by the bot (``register_channel``). When it is not registered,
  or raises :class:`ChannelUnavailable` (no linked chat, the user blocked the bot), the
  notice goes by e-mail instead — unless the user gets e-mail anyway.

Which channels a user gets is ``users.notify_channels`` (default: none besides the
console), set through ``PUT /api/v1/me/notification-settings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from crm.platform.tenancy import TenantRef, scope_connection
from crm.tenants.mail.outbox import queue_mail
from crm.tenants.notifications.recipients import Recipient

# Where the console finds the record a notification is about.
ENTITY_PATHS = {"task": "tasks", "client": "clients", "user": "users", "lead": "leads"}


@dataclass
class Notice:
    """One notification on its way to a user."""

    kind: str  # task_reminder | digest | birthday | web_lead
    title: str
    body: str
    entity: str | None = None
    entity_id: int | None = None
    # When it was meant to reach the user (the timer's time): lateness is measured from it.
    scheduled_for: datetime | None = None
    id: int | None = None  # the console row, once stored

    @property
    def link(self) -> str | None:
        if self.entity in ENTITY_PATHS and self.entity_id is not None:
            return f"/api/v1/{ENTITY_PATHS[self.entity]}/{self.entity_id}"
        return None


class ChannelUnavailable(Exception):
    """The channel cannot reach this user now (no linked chat, the bot is blocked)."""


class Channel(Protocol):
    name: str

    async def deliver(self, tenant: TenantRef, user: Recipient, notification: Notice) -> None: ...


class ConsoleChannel:
    """Stores the notification for the console list (and gives it its id)."""

    name = "console"

    async def deliver(self, tenant: TenantRef, user: Recipient, notification: Notice) -> None:
        await store_for_console([notification], [user.id])


class EmailChannel:
    """Queues the notification as an e-mail through the mail interface (sent after commit)."""

    name = "email"

    async def deliver(self, tenant: TenantRef, user: Recipient, notification: Notice) -> None:
        body = notification.body
        if notification.link:
            body = f"{body}\n\n{notification.link}"
        await queue_mail(to=user.email, subject=notification.title, body=body, kind=f"notification.{notification.kind}")


CONSOLE, EMAIL, TELEGRAM = "console", "email", "telegram"
# Channels a user may choose (the console is always on).
USER_CHANNELS = (EMAIL, TELEGRAM)
_registry: dict[str, Channel] = {}


def register_channel(channel: Channel) -> None:
    """Add (or replace) the channel called ``channel.name``: the bot registers ``telegram``."""
    _registry[channel.name] = channel


def unregister_channel(name: str) -> None:
    if name in (CONSOLE, EMAIL):
        raise ValueError(f"the {name} channel is built in")
    _registry.pop(name, None)


def registered_channel(name: str) -> Channel | None:
    return _registry.get(name)


register_channel(ConsoleChannel())
register_channel(EmailChannel())


async def notify(tenant: TenantRef, user: Recipient, notification: Notice) -> Notice:
    """Store ``notification`` for the console and hand it to the user's channels, in the open
    tenant scope. Telegram falls back to e-mail when it cannot reach the user."""
    await notify_many(tenant, [(user, notification)])
    return notification


async def notify_many(tenant: TenantRef, deliveries: Sequence[tuple[Recipient, Notice]]) -> None:
    """:func:`notify` for many notices at once: the console rows go in with one statement
    (a minute's reminders of a whole company cost one round trip), then each user's channels."""
    if not deliveries:
        return
    await store_for_console([notice for _, notice in deliveries], [user.id for user, _ in deliveries])
    for user, notification in deliveries:
        await _deliver_elsewhere(tenant, user, notification)


# One statement for any number of rows; WITH ORDINALITY keeps the ids in the notices' order,
# clock_timestamp() stamps each row when it is written (now() would be the transaction start).
_STORE = """
INSERT INTO "notifications" ("user_id", "kind", "title", "body", "entity", "entity_id", "created_at")
SELECT "user_id", "kind", "title", "body", "entity", "entity_id", clock_timestamp()
FROM unnest($1::int[], $2::varchar[], $3::varchar[], $4::text[], $5::varchar[], $6::int[])
     WITH ORDINALITY AS given ("user_id", "kind", "title", "body", "entity", "entity_id", "position")
ORDER BY "position"
RETURNING "id"
"""


async def store_for_console(notices: Sequence[Notice], user_ids: Sequence[int]) -> None:
    """The console channel's rows for ``notices`` (to the users at the same positions); each
    notice gets its row's id. Plain SQL: building ORM objects cost more than the insert."""
    rows = await scope_connection().fetch(
        _STORE,
        list(user_ids),
        [notice.kind for notice in notices],
        [notice.title[:300] for notice in notices],
        [notice.body for notice in notices],
        [notice.entity for notice in notices],
        [notice.entity_id for notice in notices],
    )
    # Rows are inserted, and returned, in the order of the SELECT.
    for notice, row in zip(notices, rows, strict=True):
        notice.id = int(row["id"])


async def _deliver_elsewhere(tenant: TenantRef, user: Recipient, notification: Notice) -> None:
    wanted = [name for name in dict.fromkeys(user.channels) if name != CONSOLE]
    for name in wanted:
        channel = _registry.get(name)
        try:
            if channel is None:
                raise ChannelUnavailable(f"no {name} channel is registered")
            await channel.deliver(tenant, user, notification)
        except ChannelUnavailable:
            if name == TELEGRAM and EMAIL not in wanted:
                await _registry[EMAIL].deliver(tenant, user, notification)
