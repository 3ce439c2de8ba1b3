"""Leads: potential clients, qualified and then converted into a client plus a deal."""

from __future__ import annotations

from piccolo.columns import JSONB, Array, ForeignKey, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.clients.tables import Client
from crm.tenants.deals.tables import Deal
from crm.tenants.users.tables import User


class Lead(Table, tablename="leads"):
    id = Serial(primary_key=True)
    name = Varchar(length=300)  # the person
    company_name = Varchar(length=300, default="")
    phones = Array(base_column=Varchar(length=32))  # E.164
    emails = Array(base_column=Varchar(length=320))
    source = Varchar(length=16, default="manual")  # web_form | call | import | manual | bot
    status = Varchar(length=16, default="new")  # new | in_progress | qualified | disqualified | converted
    note = Text(default="")
    disqualified_reason = Varchar(length=300, null=True, default=None)
    custom = JSONB(default={})
    responsible_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    client_id = ForeignKey(Client, on_delete=OnDelete.set_null, null=True, default=None)
    deal_id = ForeignKey(Deal, on_delete=OnDelete.set_null, null=True, default=None)
    converted_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


LEAD_DDL: tuple[str, ...] = (
    'CREATE INDEX leads_responsible_id ON "leads" ("responsible_id")',
    'CREATE INDEX leads_status ON "leads" ("status")',
    'CREATE INDEX leads_client_id ON "leads" ("client_id")',
)
