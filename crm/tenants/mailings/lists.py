"""The mailing lists (segments, templates, mailings) under the shared list conventions:
``{items, next_cursor}``, keyset pages of ``limit``, ``sort`` by a field (``-`` descending),
``q`` over the name and filters named after fields (crm.platform.listing)."""

from __future__ import annotations

from typing import Any

import msgspec

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import ListSpec, escape_like, page_of, page_query
from crm.platform.tenancy import read_in_tenant
from crm.tenants.mailings.schemas import (
    MAILING_STATES,
    MailingPage,
    SegmentPage,
    TemplatePage,
    TemplateRead,
)
from crm.tenants.mailings.services import (
    MAILING_COLUMNS,
    SEGMENT_COLUMNS,
    TEMPLATE_COLUMNS,
    mailing_read,
    owned,
    progress_of,
    segment_read,
)
from crm.tenants.mailings.tables import Mailing, MailTemplate, Segment

SEGMENT_LIST = ListSpec(
    sortable={"id": Segment.id, "name": Segment.name, "created_at": Segment.created_at,
              "updated_at": Segment.updated_at},
)  # fmt: skip
TEMPLATE_LIST = ListSpec(
    sortable={"id": MailTemplate.id, "name": MailTemplate.name, "created_at": MailTemplate.created_at,
              "updated_at": MailTemplate.updated_at},
)  # fmt: skip
# Newest first, as the mailings page shows them.
MAILING_LIST = ListSpec(
    sortable={"id": Mailing.id, "name": Mailing.name, "created_at": Mailing.created_at}, default_sort="-id"
)


def _named(q: str | None) -> str | None:
    return f"%{escape_like(q.strip())}%" if q and q.strip() else None


async def list_segments(
    principal: Principal, *, sort: str | None, cursor: str | None, limit: int, q: str | None = None
) -> SegmentPage:
    ordering = SEGMENT_LIST.ordering(sort)

    async def page() -> list[dict[str, Any]]:
        query = Segment.select(*SEGMENT_COLUMNS).where(await owned(principal, "read", Segment.author_id))
        if (pattern := _named(q)) is not None:
            query = query.where(Segment.name.ilike(pattern))
        return await page_query(query.output(load_json=True), ordering, cursor, limit).run()

    rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
    return SegmentPage(items=[segment_read(row) for row in rows], next_cursor=after)


async def list_templates(
    principal: Principal, *, sort: str | None, cursor: str | None, limit: int, q: str | None = None
) -> TemplatePage:
    ordering = TEMPLATE_LIST.ordering(sort)

    async def page() -> list[dict[str, Any]]:
        query = MailTemplate.select(*TEMPLATE_COLUMNS).where(await owned(principal, "read", MailTemplate.author_id))
        if (pattern := _named(q)) is not None:
            query = query.where(MailTemplate.name.ilike(pattern))
        return await page_query(query, ordering, cursor, limit).run()

    rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
    return TemplatePage(items=msgspec.convert(rows, list[TemplateRead]), next_cursor=after)


async def list_mailings(
    principal: Principal,
    *,
    sort: str | None,
    cursor: str | None,
    limit: int,
    q: str | None = None,
    state: str | None = None,
) -> MailingPage:
    ordering = MAILING_LIST.ordering(sort)
    if state is not None and state not in MAILING_STATES:
        raise InvalidInput(
            "The filters are not valid.", errors=[FieldError("state", f"must be one of {', '.join(MAILING_STATES)}")]
        )

    async def page() -> tuple[list[dict[str, Any]], str | None, dict[int, Any]]:
        query = Mailing.select(*MAILING_COLUMNS).where(await owned(principal, "read", Mailing.author_id))
        if (pattern := _named(q)) is not None:
            query = query.where(Mailing.name.ilike(pattern))
        if state is not None:
            query = query.where(Mailing.state == state)
        rows, after = page_of(await page_query(query, ordering, cursor, limit).run(), ordering, limit)
        # Progress of this page's mailings only: one grouped count, not one per mailing.
        return rows, after, await progress_of([row["id"] for row in rows])

    rows, after, progress = await read_in_tenant(principal.tenant, page)
    return MailingPage(items=[mailing_read(row, progress[row["id"]]) for row in rows], next_cursor=after)
