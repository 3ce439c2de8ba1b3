"""Mailing tables: segments, templates, mailings, their deliveries, and addresses not to mail."""

from __future__ import annotations

from piccolo.columns import JSONB, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class Segment(Table, tablename="mailing_segments"):
    """A saved filter over clients, evaluated when a mailing starts (not when it is saved)."""

    id = Serial(primary_key=True)
    name = Varchar(length=200)
    filters = JSONB(default={})
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class MailTemplate(Table, tablename="mailing_templates"):
    """Subject, text and optional HTML in the sandboxed Jinja dialect (checked when saved)."""

    id = Serial(primary_key=True)
    name = Varchar(length=200)
    subject = Varchar(length=300)
    text = Text()
    html = Text(null=True, default=None)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Mailing(Table, tablename="mailings"):
    id = Serial(primary_key=True)
    name = Varchar(length=200)
    segment_id = ForeignKey(Segment, on_delete=OnDelete.restrict, null=False)
    template_id = ForeignKey(MailTemplate, on_delete=OnDelete.restrict, null=False)
    # draft → scheduled → sending → sent | cancelled
    state = Varchar(length=10, default="draft")
    scheduled_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    total = Integer(default=0)  # deliveries created when it started
    error = Varchar(length=300, null=True, default=None)  # why it could not start (limit, …)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Delivery(Table, tablename="mailing_deliveries"):
    """One recipient of one mailing; its state makes the letter go out once (see sending.py)."""

    id = Serial(primary_key=True)
    mailing_id = ForeignKey(Mailing, on_delete=OnDelete.cascade, null=False)
    client_id = Integer(null=True, default=None)
    email = Varchar(length=320)
    # pending → sending (claimed, lease) → sent | failed | cancelled; back to pending after a
    # refusal for now (4xx), with lease_until as the time of the next attempt.
    state = Varchar(length=10, default="pending")
    claim = Varchar(length=32, null=True, default=None)
    lease_until = Timestamptz(null=True, default=None)  # sending: the claim's lease; pending: not before
    attempts = Integer(default=0)
    sent_at = Timestamptz(null=True, default=None)
    error = Varchar(length=300, null=True, default=None)


class Unsubscribe(Table, tablename="mailing_unsubscribes"):
    """Addresses left out of every later mailing: unsubscribed by the link, or bounced."""

    id = Serial(primary_key=True)
    email = Varchar(length=320, unique=True)
    reason = Varchar(length=12, default="unsubscribed")  # unsubscribed | bounced
    mailing_id = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


MAILING_DDL: tuple[str, ...] = (
    'CREATE UNIQUE INDEX mailing_deliveries_recipient ON "mailing_deliveries" ("mailing_id", "email")',
    'CREATE INDEX mailing_deliveries_state ON "mailing_deliveries" ("mailing_id", "state", "id")',
)
