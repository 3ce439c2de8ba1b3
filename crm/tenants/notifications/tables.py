"""Notifications stored for the console: what each user was told, and whether they read it."""

from __future__ import annotations

from piccolo.columns import ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class Notification(Table, tablename="notifications"):
    id = Serial(primary_key=True)
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, null=False)  # the recipient
    kind = Varchar(length=30)  # task_reminder | digest | birthday
    title = Varchar(length=300)
    body = Text(default="")
    # The record it is about (task, client, user) — the console links to it.
    entity = Varchar(length=30, null=True, default=None)
    entity_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    read_at = Timestamptz(null=True, default=None)


NOTIFICATION_DDL: tuple[str, ...] = (
    # The list is a user's newest first (keyset on id), and the unread count stays cheap.
    'CREATE INDEX notifications_user_id ON "notifications" ("user_id", "id")',
    'CREATE INDEX notifications_unread ON "notifications" ("user_id") WHERE "read_at" IS NULL',
)
