"""Per-tenant configuration seeded from the edition and editable by the tenant admin."""

from __future__ import annotations

from piccolo.columns import JSONB, Boolean, ForeignKey, Integer, OnDelete, Serial, Varchar
from piccolo.table import Table


class Pipeline(Table, tablename="pipelines"):
    id = Serial(primary_key=True)
    key = Varchar(length=50, unique=True)
    names = JSONB()  # {"ru": ..., "en": ...}
    position = Integer(default=0)


class PipelineStage(Table, tablename="pipeline_stages"):
    id = Serial(primary_key=True)
    pipeline_id = ForeignKey(Pipeline, on_delete=OnDelete.cascade, null=False)
    key = Varchar(length=50)
    names = JSONB()
    position = Integer(default=0)
    probability = Integer(default=0)
    kind = Varchar(length=8, default="open")  # open | won | lost


class Role(Table, tablename="roles"):
    id = Serial(primary_key=True)
    key = Varchar(length=50, unique=True)
    names = JSONB()
    rights = JSONB()  # {entity: {action: scope}}; anything absent is denied
    is_system = Boolean(default=False)


class TenantSetting(Table, tablename="tenant_settings"):
    """Small named settings: call outcomes, task types, custom fields, labels, company profile."""

    id = Serial(primary_key=True)
    key = Varchar(length=100, unique=True)
    value = JSONB()
