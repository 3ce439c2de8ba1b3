"""The audit log API: admins query their company's log by entity, user, action and time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, Cursor, IdFilter, Limit, ListSpec, Sort, page_of, page_query
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


# The chain's order is the log's order: newest first unless asked otherwise.
AUDIT_LIST = ListSpec(sortable={"id": AuditEntry.id}, default_sort="-id")


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
        actor_id: IdFilter = None,
        action: FromQuery[str | None] = None,
        occurred_at_from: FromQuery[datetime | None] = None,
        occurred_at_to: FromQuery[datetime | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> AuditPage:
        ordering = AUDIT_LIST.ordering(sort)
        query = AuditEntry.select(*READ_COLUMNS).output(load_json=True)
        conditions = [
            (entity is not None, AuditEntry.entity == entity),
            (entity_id is not None, AuditEntry.entity_id == entity_id),
            (actor_id is not None, AuditEntry.actor_id == actor_id),
            (action is not None, AuditEntry.action == action),
            (occurred_at_from is not None, AuditEntry.occurred_at >= occurred_at_from),
            (occurred_at_to is not None, AuditEntry.occurred_at < occurred_at_to),
        ]
        for wanted, condition in conditions:
            if wanted:
                query = query.where(condition)
        rows = await read_in_tenant(principal.tenant, page_query(query, ordering, cursor, limit).run)
        items, after = page_of(rows, ordering, limit)
        return AuditPage(items=msgspec.convert(items, list[AuditEntryRead]), next_cursor=after)
