"""Segments: saved filters over clients, turned into one SQL condition when used.

A segment is evaluated when a mailing starts, so it takes in the clients that match then.
Recipients are further limited to the clients the mailing's author may read, with an
e-mail address (the first one), not unsubscribed and not bounced.
"""

from __future__ import annotations

import json
from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.querystring import QueryString

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.sql import compile_sql, fetch_sql
from crm.tenants.clients._read import clients_in_scope
from crm.tenants.configuration.custom_fields import definitions
from crm.tenants.configuration.tables import PipelineStage
from crm.tenants.mailings.schemas import CLIENT_STATUSES, SegmentFilters
from crm.tenants.users.tables import User

MAX_LIST = 100


async def check_filters(filters: SegmentFilters) -> SegmentFilters:
    """Validate ``filters`` (inside the tenant scope); 422 naming each bad field."""
    errors: list[FieldError] = []
    for field, values in (
        ("statuses", filters.statuses),
        ("kinds", filters.kinds),
        ("tags", filters.tags),
        ("responsible_ids", filters.responsible_ids),
        ("deal_stage_ids", filters.deal_stage_ids),
    ):
        if len(values) > MAX_LIST:
            errors.append(FieldError(f"filters.{field}", f"must list at most {MAX_LIST} values"))
    for status in filters.statuses:
        if status not in CLIENT_STATUSES:
            errors.append(FieldError("filters.statuses", f"{status!r} is not one of {', '.join(CLIENT_STATUSES)}"))
    for kind in filters.kinds:
        if kind not in ("company", "person"):
            errors.append(FieldError("filters.kinds", f"{kind!r} is not company or person"))
    for name, moment in (
        ("last_contact_before", filters.last_contact_before),
        ("last_contact_after", filters.last_contact_after),
    ):
        if moment is not None and moment.tzinfo is None:
            errors.append(FieldError(f"filters.{name}", "must carry a UTC offset"))
    if filters.responsible_ids:
        found = {row["id"] for row in await User.select(User.id).where(User.id.is_in(filters.responsible_ids))}
        for missing in sorted(set(filters.responsible_ids) - found):
            errors.append(FieldError("filters.responsible_ids", f"there is no user {missing}"))
    if filters.deal_stage_ids:
        stages = PipelineStage.select(PipelineStage.id).where(PipelineStage.id.is_in(filters.deal_stage_ids))
        found = {row["id"] for row in await stages}
        for missing in sorted(set(filters.deal_stage_ids) - found):
            errors.append(FieldError("filters.deal_stage_ids", f"there is no pipeline stage {missing}"))
    custom: dict[str, Any] = {}
    if filters.custom:
        defined = await definitions("client")
        for key, value in filters.custom.items():
            definition = defined.get(key)
            if definition is None:
                errors.append(FieldError(f"filters.custom.{key}", "is not a custom field of clients"))
                continue
            try:
                canonical = definition.canonical(value)
            except ValueError as problem:
                errors.append(FieldError(f"filters.custom.{key}", str(problem)))
                continue
            # A multi-choice field matches when it holds the value among others.
            custom[key] = [canonical] if definition.type == "multi_choice" else canonical
    if errors:
        raise InvalidInput("The segment has invalid filters.", errors=errors)
    tags = sorted({" ".join(tag.split()).lower() for tag in filters.tags if tag.strip()})
    return SegmentFilters(
        statuses=sorted(set(filters.statuses)),
        kinds=sorted(set(filters.kinds)),
        tags=tags,
        custom=custom,
        responsible_ids=sorted(set(filters.responsible_ids)),
        last_contact_before=filters.last_contact_before,
        last_contact_after=filters.last_contact_after,
        never_contacted=filters.never_contacted,
        deal_stage_ids=sorted(set(filters.deal_stage_ids)),
    )


def segment_condition(filters: SegmentFilters) -> QueryString:
    """The filters as one SQL condition over ``clients`` (parameters, never interpolation)."""
    parts: list[QueryString] = [QueryString("cardinality(clients.emails) > 0")]
    if filters.statuses:
        parts.append(QueryString("clients.status = ANY({}::varchar[])", filters.statuses))
    if filters.kinds:
        parts.append(QueryString("clients.kind = ANY({}::varchar[])", filters.kinds))
    if filters.tags:
        parts.append(QueryString("clients.tags && {}::varchar[]", filters.tags))
    if filters.custom:
        parts.append(QueryString("clients.custom @> {}::jsonb", json.dumps(filters.custom)))
    if filters.responsible_ids:
        parts.append(QueryString("clients.responsible_id = ANY({}::int[])", filters.responsible_ids))
    if filters.never_contacted:
        parts.append(QueryString("clients.last_contact_at IS NULL"))
    if filters.last_contact_before is not None:
        parts.append(QueryString("clients.last_contact_at < {}", filters.last_contact_before))
    if filters.last_contact_after is not None:
        parts.append(QueryString("clients.last_contact_at >= {}", filters.last_contact_after))
    if filters.deal_stage_ids:
        parts.append(
            QueryString(
                "EXISTS (SELECT 1 FROM deals WHERE deals.client_id = clients.id AND deals.stage_id = ANY({}::int[]))",
                filters.deal_stage_ids,
            )
        )
    template = " AND ".join("({})" for _ in parts)
    return QueryString(template, *parts)


NOT_EXCLUDED = "NOT EXISTS (SELECT 1 FROM mailing_unsubscribes u WHERE u.email = lower(clients.emails[1]))"


async def recipients_condition(principal: Principal, filters: SegmentFilters) -> QueryString:
    """Clients of the segment that ``principal`` may read (inside the tenant scope)."""
    allowed = await clients_in_scope(principal, "read")
    assert isinstance(allowed, WhereRaw) or hasattr(allowed, "querystring")
    return QueryString("({}) AND ({})", segment_condition(filters), allowed.querystring)


async def count_segment(principal: Principal, filters: SegmentFilters) -> tuple[int, int]:
    """(matching clients with an address, of them not unsubscribed or bounced)."""
    condition = await recipients_condition(principal, filters)
    rows = await fetch_sql(
        f"SELECT count(*) AS clients, count(*) FILTER (WHERE {NOT_EXCLUDED}) AS recipients FROM clients WHERE {{}}",
        condition,
    )
    return int(rows[0]["clients"]), int(rows[0]["recipients"])


def insert_deliveries_sql(mailing_id: int, condition: QueryString) -> tuple[str, list[Any]]:
    """One statement creating a delivery per distinct address of the segment."""
    return compile_sql(
        "INSERT INTO mailing_deliveries (mailing_id, client_id, email)"
        " SELECT DISTINCT ON (lower(clients.emails[1])) {}, clients.id, lower(clients.emails[1]) FROM clients"
        f" WHERE {{}} AND {NOT_EXCLUDED} ORDER BY lower(clients.emails[1]), clients.id"
        " ON CONFLICT (mailing_id, email) DO NOTHING",
        mailing_id,
        condition,
    )
