"""Deals in pipelines, and every stage change with its time (the funnel analytics reads it)."""

from __future__ import annotations

from decimal import Decimal

from piccolo.columns import JSONB, Date, ForeignKey, Integer, Numeric, OnDelete, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from crm.tenants.clients.tables import Client, folded
from crm.tenants.configuration.tables import Pipeline, PipelineStage
from crm.tenants.users.tables import User


class Deal(Table, tablename="deals"):
    id = Serial(primary_key=True)
    title = Varchar(length=300)
    client_id = ForeignKey(Client, on_delete=OnDelete.restrict, null=False)
    pipeline_id = ForeignKey(Pipeline, on_delete=OnDelete.restrict, null=False)
    stage_id = ForeignKey(PipelineStage, on_delete=OnDelete.restrict, null=False)
    amount = Numeric(digits=(14, 2), default=Decimal(0))
    currency = Varchar(length=3, default="RUB")
    probability = Integer(default=0)
    expected_close_on = Date(null=True, default=None)
    status = Varchar(length=8, default="open")  # open | won | lost (follows the stage's kind)
    lost_reason = Varchar(length=300, null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    responsible_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    author_id = ForeignKey(User, on_delete=OnDelete.set_null, null=True, default=None)
    custom = JSONB(default={})
    stage_changed_at = Timestamptz(default=TimestamptzNow())
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class DealStageChange(Table, tablename="deal_stage_changes"):
    id = Serial(primary_key=True)
    deal_id = ForeignKey(Deal, on_delete=OnDelete.cascade, null=False)
    from_stage_id = Integer(null=True, default=None)  # null: the deal was created in to_stage
    to_stage_id = Integer()
    changed_at = Timestamptz(default=TimestamptzNow())
    actor_id = Integer(null=True, default=None)


DEAL_DDL: tuple[str, ...] = (
    'CREATE INDEX deals_client_id ON "deals" ("client_id")',
    # The kanban: a stage's latest deals (migration 19).
    'CREATE INDEX deals_stage_recent ON "deals" ("stage_id", "stage_changed_at" DESC, "id" DESC)'
    ' INCLUDE ("currency", "amount", "responsible_id", "author_id")',
    'CREATE INDEX deals_responsible_id ON "deals" ("responsible_id")',
    'CREATE INDEX deal_stage_changes_deal_id ON "deal_stage_changes" ("deal_id", "changed_at")',
    # Search matches titles the way it matches client names (see crm/tenants/search).
    f'CREATE INDEX deals_title_trgm ON "deals" USING gin (({folded("title")}) gin_trgm_ops) WITH (fastupdate = off)',
)
