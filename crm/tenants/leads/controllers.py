"""The leads API under /api/v1: leads, their qualification and their conversion.

Leads belong to the edition's ``clients`` module (every edition has it; a conversion that
asks for a deal also needs ``deals``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from piccolo.columns.combination import Combinable, WhereRaw

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import (
    DEFAULT_LIMIT,
    MAX_ID,
    Cursor,
    IdFilter,
    Limit,
    ListSpec,
    Sort,
    escape_like,
    page_of,
    page_query,
)
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.phones import phone_or_none
from crm.tenants.leads.conversion import convert_lead
from crm.tenants.leads.schemas import (
    SOURCES,
    STATUSES,
    LeadConversion,
    LeadConvert,
    LeadCreate,
    LeadDisqualify,
    LeadPage,
    LeadRead,
    LeadUpdate,
)
from crm.tenants.leads.services import (
    OWNERS,
    READ_COLUMNS,
    create_lead,
    delete_lead,
    disqualify_lead,
    lead_in_scope,
    qualify_lead,
    update_lead,
)
from crm.tenants.leads.tables import Lead
from crm.tenants.users.scopes import records_in_scope

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
LEAD_LIST = ListSpec(sortable={"id": Lead.id, "created_at": Lead.created_at, "name": Lead.name})


async def _matching(q: str) -> Combinable:
    """``q`` in the name or company name, or the lead's phone or e-mail exactly."""
    text = q.strip()
    pattern = f"%{escape_like(text)}%"
    condition: Combinable = Lead.name.ilike(pattern) | Lead.company_name.ilike(pattern)
    condition = condition | WhereRaw("{} = ANY(emails)", text.lower())
    phone = phone_or_none(text, await phone_region())
    if phone is not None:
        condition = condition | WhereRaw("{} = ANY(phones)", phone)
    return condition


class LeadsController(Controller):
    path = "/api/v1/leads"
    tags = ["leads"]
    guards = [requires_module("clients")]

    @get(
        "/",
        opt=permission("leads", "read"),
        operation_id="listLeads",
        summary="Leads you may see",
        description=(
            "Filters: status, source, responsible_id. `q` matches the name or company name, or a phone "
            "or e-mail exactly. Sort by id, created_at or name."
        ),
    )
    async def list_leads(
        self,
        principal: NamedDependency[Principal],
        status: FromQuery[str | None] = None,
        source: FromQuery[str | None] = None,
        responsible_id: IdFilter = None,
        q: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> LeadPage:
        ordering = LEAD_LIST.ordering(sort)
        errors = []
        if status is not None and status not in STATUSES:
            errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
        if source is not None and source not in SOURCES:
            errors.append(FieldError("source", f"must be one of {', '.join(SOURCES)}"))
        if errors:
            raise InvalidInput("The filters are not valid.", errors=errors)

        async def page() -> list[dict[str, Any]]:
            visible = await records_in_scope(principal, "leads", "read", *OWNERS)
            query = Lead.select(*READ_COLUMNS).where(visible).output(load_json=True)
            for column, wanted in ((Lead.status, status), (Lead.source, source), (Lead.responsible_id, responsible_id)):
                if wanted is not None:
                    query = query.where(column == wanted)
            if q and q.strip():
                query = query.where(await _matching(q))
            return await page_query(query, ordering, cursor, limit).run()

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return LeadPage(items=msgspec.convert(rows, list[LeadRead]), next_cursor=after)

    @post(
        "/",
        opt=permission("leads", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createLead",
        summary="Add a lead",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[LeadCreate]
    ) -> LeadRead:
        return msgspec.convert(await create_lead(principal, data, origin=origin_of(request)), LeadRead)

    @get("/{lead_id:int}", opt=permission("leads", "read"), operation_id="getLead", summary="One lead you may see")
    async def get_lead(self, principal: NamedDependency[Principal], lead_id: Id) -> LeadRead:
        row = await read_in_tenant(principal.tenant, lambda: lead_in_scope(principal, lead_id, "read"))
        return msgspec.convert(row, LeadRead)

    @patch("/{lead_id:int}", opt=permission("leads", "update"), operation_id="updateLead", summary="Change a lead")
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        lead_id: Id,
        data: JSONBody[LeadUpdate],
    ) -> LeadRead:
        return msgspec.convert(await update_lead(principal, lead_id, data, origin=origin_of(request)), LeadRead)

    @delete(
        "/{lead_id:int}",
        opt=permission("leads", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteLead",
        summary="Delete a lead",
    )
    async def delete_lead(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], lead_id: Id
    ) -> None:
        await delete_lead(principal, lead_id, origin=origin_of(request))

    @post(
        "/{lead_id:int}/qualify",
        opt=permission("leads", "update"),
        status_code=HTTP_200_OK,
        operation_id="qualifyLead",
        summary="Mark a lead qualified",
    )
    async def qualify(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], lead_id: Id
    ) -> LeadRead:
        return msgspec.convert(await qualify_lead(principal, lead_id, origin=origin_of(request)), LeadRead)

    @post(
        "/{lead_id:int}/disqualify",
        opt=permission("leads", "update"),
        status_code=HTTP_200_OK,
        operation_id="disqualifyLead",
        summary="Mark a lead disqualified, with the reason",
    )
    async def disqualify(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        lead_id: Id,
        data: JSONBody[LeadDisqualify],
    ) -> LeadRead:
        row = await disqualify_lead(principal, lead_id, data.reason, origin=origin_of(request))
        return msgspec.convert(row, LeadRead)

    @post(
        "/{lead_id:int}/convert",
        opt=permission("leads", "update"),
        status_code=HTTP_200_OK,
        operation_id="convertLead",
        summary="Turn a lead into a client and, optionally, a deal — in one step",
        description=(
            "Creates the client (a lead with a company name: the company, plus the person linked to it) "
            "unless `client_id` names an existing one, then the deal when `deal` is given, and marks the "
            "lead converted. A likely duplicate client answers 409 with the matches unless `force`. "
            "Needs clients.create (without client_id) and deals.create (with deal)."
        ),
    )
    async def convert(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        lead_id: Id,
        data: JSONBody[LeadConvert],
    ) -> LeadConversion:
        result = await convert_lead(principal, lead_id, data, origin=origin_of(request))
        return msgspec.convert(result, LeadConversion)


CONTROLLERS: list[type[Controller]] = [LeadsController]
