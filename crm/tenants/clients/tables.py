"""Clients: companies and people (the CRM core issue extends this table)."""

from __future__ import annotations

from piccolo.columns import Array, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.users.tables import User


class Client(Table, tablename="clients"):
    id = Serial(primary_key=True)
    kind = Varchar(length=16)  # company | person
    name = Varchar(length=300, index=True)
    phones = Array(base_column=Varchar(length=32))  # E.164
    emails = Array(base_column=Varchar(length=320))
    status = Varchar(length=16, default="lead")  # lead | prospect | client | former
    responsible_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
