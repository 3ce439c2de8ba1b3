"""Tasks: who does what by when, with reminders, a checklist and optional recurrence."""

from __future__ import annotations

from piccolo.columns import JSONB, Array, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.clients.tables import Client, folded
from crm.tenants.deals.tables import Deal
from crm.tenants.users.tables import User


class Task(Table, tablename="tasks"):
    id = Serial(primary_key=True)
    title = Varchar(length=300)
    description = Text(default="")
    task_type = Varchar(length=50, null=True, default=None)  # a key of the tenant's task types
    assignee_id = ForeignKey(User, on_delete=OnDelete.restrict, null=False)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    client_id = ForeignKey(Client, on_delete=OnDelete.set_null, null=True, default=None)
    deal_id = ForeignKey(Deal, on_delete=OnDelete.set_null, null=True, default=None)
    due_at = Timestamptz()  # UTC; shown in the user's zone
    remind_before_minutes = Array(base_column=Integer())
    priority = Varchar(length=8, default="normal")  # low | normal | high
    status = Varchar(length=12, default="open")  # open | done | cancelled
    done_at = Timestamptz(null=True, default=None)
    checklist = JSONB(default=[])  # [{"text": str, "done": bool}]
    rrule = Varchar(length=500, null=True, default=None)  # RFC 5545; the next one is created when this is done
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


TASK_DDL: tuple[str, ...] = (
    'CREATE INDEX tasks_assignee_due ON "tasks" ("assignee_id", "due_at")',
    'CREATE INDEX tasks_client_id ON "tasks" ("client_id")',
    'CREATE INDEX tasks_deal_id ON "tasks" ("deal_id")',
    # Search matches titles the way it matches client names (see crm/tenants/search).
    f'CREATE INDEX tasks_title_trgm ON "tasks" USING gin (({folded("title")}) gin_trgm_ops) WITH (fastupdate = off)',
)
