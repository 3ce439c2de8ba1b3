"""Activities: calls, meetings, notes and logged e-mails on a client's timeline."""

from __future__ import annotations

from piccolo.columns import Bytea, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.clients.tables import Client
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.tables import Task
from crm.tenants.users.tables import User


class Activity(Table, tablename="activities"):
    id = Serial(primary_key=True)
    kind = Varchar(length=8)  # call | meeting | note | email
    client_id = ForeignKey(Client, on_delete=OnDelete.cascade, null=False)
    deal_id = ForeignKey(Deal, on_delete=OnDelete.set_null, null=True, default=None)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    status = Varchar(length=8, default="done")  # planned | done
    occurred_at = Timestamptz(default=TimestamptzNow())
    subject = Varchar(length=300, default="")
    comment = Text(default="")
    # Calls
    direction = Varchar(length=3, null=True, default=None)  # in | out
    phone = Varchar(length=32, null=True, default=None)  # E.164
    duration_seconds = Integer(null=True, default=None)
    outcome = Varchar(length=50, null=True, default=None)  # a key of the tenant's call outcomes
    recording_url = Varchar(length=2000, null=True, default=None)
    # The follow-up task created when the result was logged with a next step.
    next_task_id = ForeignKey(Task, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ActivityAttachment(Table, tablename="activity_attachments"):
    """A file kept with an activity, e.g. the voice note a call was logged with from the bot.

    The bytes live in the tenant's own schema (no outside store), so a company's data stays
    one unit that dumps and moves whole; files are small (Telegram lets bots fetch 20 MB).
    """

    id = Serial(primary_key=True)
    activity_id = ForeignKey(Activity, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=8)  # voice | audio
    mime_type = Varchar(length=100, default="application/octet-stream")
    duration_seconds = Integer(null=True, default=None)
    size_bytes = Integer(default=0)
    content = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)


ACTIVITY_DDL: tuple[str, ...] = (
    'CREATE INDEX activities_client_timeline ON "activities" ("client_id", "occurred_at" DESC)',
    'CREATE INDEX activities_deal_id ON "activities" ("deal_id")',
    'CREATE INDEX activities_author_id ON "activities" ("author_id")',
    'CREATE INDEX activity_attachments_activity_id ON "activity_attachments" ("activity_id")',
    'CREATE INDEX activity_attachments_author_id ON "activity_attachments" ("author_id")',
)
