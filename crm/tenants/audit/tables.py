"""Audit rows and the chain's head (one row whose lock serialises appends per tenant)."""

from __future__ import annotations

from piccolo.columns import JSONB, BigSerial, Integer, Serial, Timestamptz, Varchar
from piccolo.table import Table


class AuditEntry(Table, tablename="audit_log"):
    id = BigSerial(primary_key=True)
    occurred_at = Timestamptz()
    actor_kind = Varchar(length=16)  # user | bot | process | system | import | anonymous
    actor_id = Integer(null=True, default=None)
    actor_label = Varchar(length=320)
    channel = Varchar(length=16)  # api | console | bot | worker | cli
    action = Varchar(length=64, index=True)
    entity = Varchar(length=64)
    entity_id = Varchar(length=64, null=True, default=None)
    changes = JSONB()  # {field: [before, after]}; sensitive fields never enter it
    request_id = Varchar(length=64, null=True, default=None)
    client_address = Varchar(length=64, null=True, default=None)
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)


class AuditHead(Table, tablename="audit_head"):
    """The hash of the last row: appends lock it, and verification compares the chain's end
    with it, so a deleted tail is noticed too."""

    id = Serial(primary_key=True)
    last_hash = Varchar(length=64)
    row_count = Integer(default=0)
