"""The audit log API: admins query their company's log by entity, user, action and time, and
export it as CSV (the edition's ``audit_export`` module)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Stream

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, Cursor, IdFilter, Limit, Sort
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant
from crm.tenants.audit.reads import AUDIT_LIST, AuditFilters, audit_csv, audit_page, record_audit_export
from crm.tenants.reminders.schedule import zone_of


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
        filters = AuditFilters(
            entity=entity,
            entity_id=entity_id,
            actor_id=actor_id,
            action=action,
            occurred_at_from=occurred_at_from,
            occurred_at_to=occurred_at_to,
        )
        items, after = await read_in_tenant(principal.tenant, partial(audit_page, filters, ordering, cursor, limit))
        return AuditPage(items=msgspec.convert(items, list[AuditEntryRead]), next_cursor=after)

    @get(
        "/export.csv",
        opt=permission("audit", "export"),
        guards=[requires_module("audit_export")],
        operation_id="exportAudit",
        summary="Your company's audit log as CSV, newest first (the same filters as the list)",
        media_type="text/csv",
    )
    async def export_audit(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        actor_id: IdFilter = None,
        action: FromQuery[str | None] = None,
        occurred_at_from: FromQuery[datetime | None] = None,
        occurred_at_to: FromQuery[datetime | None] = None,
    ) -> Stream:
        filters = AuditFilters(
            entity=entity,
            entity_id=entity_id,
            actor_id=actor_id,
            action=action,
            occurred_at_from=occurred_at_from,
            occurred_at_to=occurred_at_to,
        )
        await record_audit_export(principal, filters, origin=origin_of(request))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Stream(
            audit_csv(principal, filters, zone_of(principal.timezone)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
        )
