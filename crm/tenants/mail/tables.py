"""Messages waiting to be sent (the SMTP sender of the mailing issue will drain this)."""

from __future__ import annotations

from piccolo.columns import Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class OutboxMessage(Table, tablename="mail_outbox"):
    id = Serial(primary_key=True)
    to_address = Varchar(length=320)
    subject = Varchar(length=300)
    body = Text()
    kind = Varchar(length=50)  # invitation, password_reset, …
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
