"""The audit log API: admins query their company's log by entity, user, action and time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from crm.platform.auth import Principal
from crm.platform.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, next_cursor
from crm.platform.security import permission
from crm.platform.tenancy import read_in_tenant
from crm.tenants.audit.tables import AuditEntry


class AuditEntryRead(msgspec.Struct, kw_only=True):
    id: int
    occurred_at: datetime
    actor_kind: str
    actor_id: int | None
    actor_label: str
    channel: str
    action: str
    entity: str
    entity_id: str | None
    changes: dict[str, Any]
    request_id: str | None
    client_address: str | None


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditEntryRead]
    next_cursor: str | None


READ_COLUMNS = (
    AuditEntry.id,
    AuditEntry.occurred_at,
    AuditEntry.actor_kind,
    AuditEntry.actor_id,
    AuditEntry.actor_label,
    AuditEntry.channel,
    AuditEntry.action,
    AuditEntry.entity,
    AuditEntry.entity_id,
    AuditEntry.changes,
    AuditEntry.request_id,
    AuditEntry.client_address,
)


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]

    @get(
        "/",
        opt=permission("audit", "read"),
        operation_id="listAudit",
        summary="Your company's audit log, newest first",
    )
    async def list_audit(
        self,
        principal: NamedDependency[Principal],
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        actor_id: FromQuery[int | None] = None,
        action: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> AuditPage:
        before = decode_cursor(cursor)
        query = (
            AuditEntry.select(*READ_COLUMNS)
            .output(load_json=True)
            .order_by(AuditEntry.id, ascending=False)
            .limit(limit + 1)
        )
        conditions = [
            (before > 0, AuditEntry.id < before),
            (entity is not None, AuditEntry.entity == entity),
            (entity_id is not None, AuditEntry.entity_id == entity_id),
            (actor_id is not None, AuditEntry.actor_id == actor_id),
            (action is not None, AuditEntry.action == action),
            (since is not None, AuditEntry.occurred_at >= since),
            (until is not None, AuditEntry.occurred_at < until),
        ]
        for wanted, condition in conditions:
            if wanted:
                query = query.where(condition)
        rows = await read_in_tenant(principal.tenant, query.run)
        items = msgspec.convert(rows[:limit], list[AuditEntryRead])
        return AuditPage(items=items, next_cursor=next_cursor(items, limit, has_more=len(rows) > limit))
