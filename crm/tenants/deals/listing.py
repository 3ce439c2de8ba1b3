"""The deals list: filters by field, ``q`` on the title, keyset pages — one function the
API and the console share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import ListSpec, Ordering, escape_like, page_of, page_query
from crm.platform.tenancy import read_in_tenant
from crm.tenants.deals.pipelines import STAGE_KINDS
from crm.tenants.deals.services import OWNERS, READ_COLUMNS
from crm.tenants.deals.tables import Deal
from crm.tenants.users.scopes import records_in_scope

DEAL_LIST = ListSpec(
    sortable={
        "id": Deal.id,
        "created_at": Deal.created_at,
        "amount": Deal.amount,
        "stage_changed_at": Deal.stage_changed_at,
        "title": Deal.title,
    }
)


@dataclass(frozen=True)
class DealFilters:
    client_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    status: str | None = None
    responsible_id: int | None = None
    q: str | None = None
    amount_from: Decimal | None = None
    amount_to: Decimal | None = None
    expected_close_on_from: date | None = None
    expected_close_on_to: date | None = None


def filter_problems(filters: DealFilters) -> list[FieldError]:
    errors = []
    if filters.status is not None and filters.status not in STAGE_KINDS:
        errors.append(FieldError("status", f"must be one of {', '.join(STAGE_KINDS)}"))
    for name, bound in (("amount_from", filters.amount_from), ("amount_to", filters.amount_to)):
        if bound is not None and not bound.is_finite():
            errors.append(FieldError(name, "must be a number"))
    return errors


async def list_deals(
    principal: Principal, filters: DealFilters, ordering: Ordering, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the deals ``principal`` may read, and the next page's cursor."""
    errors = filter_problems(filters)
    if errors:
        raise InvalidInput("The filters are not valid.", errors=errors)

    async def page() -> list[dict[str, Any]]:
        visible = await records_in_scope(principal, "deals", "read", *OWNERS)
        query = Deal.select(*READ_COLUMNS).where(visible).output(load_json=True)
        equal = (
            (Deal.client_id, filters.client_id),
            (Deal.pipeline_id, filters.pipeline_id),
            (Deal.stage_id, filters.stage_id),
            (Deal.status, filters.status),
            (Deal.responsible_id, filters.responsible_id),
        )
        for column, wanted in equal:
            if wanted is not None:
                query = query.where(column == wanted)
        if filters.q and filters.q.strip():
            query = query.where(Deal.title.ilike(f"%{escape_like(filters.q.strip())}%"))
        if filters.amount_from is not None:
            query = query.where(Deal.amount >= filters.amount_from)
        if filters.amount_to is not None:
            query = query.where(Deal.amount < filters.amount_to)
        if filters.expected_close_on_from is not None:
            query = query.where(Deal.expected_close_on >= filters.expected_close_on_from)
        if filters.expected_close_on_to is not None:
            query = query.where(Deal.expected_close_on < filters.expected_close_on_to)
        rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).run()
        return rows

    return page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
