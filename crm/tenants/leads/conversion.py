"""Converting a lead in one action: its client, optionally a deal, and the lead marked
converted — one transaction, so a duplicate client (409), a bad deal field (422) or a
missing right (403) leaves nothing behind.

The client is made by the clients area's own service (duplicate detection, rights and
audit live there) and the deal by :func:`crm.tenants.deals.services.create_deal`, both
joining this transaction. A lead naming a company becomes that company (the client of
the deal) plus its person, linked to it; otherwise the person is the client. Client and
deal belong to the lead's responsible (the caller when the lead has none who is active).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, Forbidden, InvalidInput
from crm.platform.security import ensure_module
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.schemas import ClientCreate
from crm.tenants.clients.services import create_client, link_company
from crm.tenants.deals.schemas import DealCreate
from crm.tenants.deals.services import client_problems, create_deal
from crm.tenants.leads.schemas import LeadConvert
from crm.tenants.leads.services import lead_in_scope, load_lead, refuse_converted
from crm.tenants.leads.tables import Lead
from crm.tenants.users.tables import User

# Fields of the deal a conversion asks for, as named in the conversion's request body.
DEAL_FIELDS = ("title", "pipeline_id", "amount", "currency")
CLIENT_STATUS = "prospect"  # a qualified contact we are working on, not yet a paying client


async def convert_lead(principal: Principal, lead_id: int, data: LeadConvert, *, origin: Origin) -> dict[str, Any]:
    """Convert the lead; returns ``{"lead", "client_id", "person_id", "deal_id"}``.

    Needs ``leads.update`` on the lead, ``clients.create`` unless ``data.client_id``
    attaches an existing client (which the caller must see), and ``deals.create`` when a
    deal is asked for. A converted lead answers 409."""
    if data.client_id is None and principal.scope("clients", "create") == "none":
        raise Forbidden("Your role does not allow creating clients.", permission="clients.create")
    if data.deal is not None:
        ensure_module(principal.tenant.edition, "deals")
        if principal.scope("deals", "create") == "none":
            raise Forbidden("Your role does not allow creating deals.", permission="deals.create")
    async with tenant_scope(principal.tenant):
        lead = await lead_in_scope(principal, lead_id, "update", lock=True)
        refuse_converted(lead)
        owner = await _owner(principal, lead["responsible_id"])
        person_id = None
        if data.client_id is not None:
            errors = await client_problems(principal, data.client_id)
            if errors:
                raise InvalidInput("The client to attach is not valid.", errors=errors)
            client_id = data.client_id
        else:
            client_id, person_id = await _create_clients(principal, lead, owner, force=data.force, origin=origin)
        deal_id = None
        if data.deal is not None:
            deal = DealCreate(
                title=data.deal.title if data.deal.title is not None else lead["company_name"] or lead["name"],
                client_id=client_id,
                pipeline_id=data.deal.pipeline_id,
                amount=data.deal.amount,
                currency=data.deal.currency,
                responsible_id=owner,
            )
            try:
                deal_id = (await create_deal(principal, deal, origin=origin))["id"]
            except InvalidInput as problem:
                raise InvalidInput(problem.detail, errors=[_in_deal(error) for error in problem.errors]) from None
        now = datetime.now(UTC)
        values = {"status": "converted", "client_id": client_id, "deal_id": deal_id, "converted_at": now}
        columns: dict[Any, Any] = {getattr(Lead, field): value for field, value in values.items()}
        await Lead.update({**columns, Lead.updated_at: now}).where(Lead.id == lead_id)
        await record_audit(
            origin.user(principal),
            "lead.converted",
            entity="lead",
            entity_id=lead_id,
            changes={field: (lead[field], value) for field, value in values.items() if lead[field] != value},
        )
        return {"lead": await load_lead(lead_id), "client_id": client_id, "person_id": person_id, "deal_id": deal_id}


async def _owner(principal: Principal, responsible_id: int | None) -> int:
    """Who the new client and deal belong to: the lead's responsible while active."""
    if responsible_id is None or responsible_id == principal.user_id:
        return principal.user_id
    active = await User.exists().where(User.id == responsible_id, User.is_active.eq(True))
    return responsible_id if active else principal.user_id


async def _create_clients(
    principal: Principal, lead: dict[str, Any], owner: int, *, force: bool, origin: Origin
) -> tuple[int, int | None]:
    """The client (and the linked person when the lead names a company)."""
    person = ClientCreate(
        kind="person",
        name=lead["name"],
        phones=lead["phones"],
        emails=lead["emails"],
        source=lead["source"],
        status=CLIENT_STATUS,
        responsible_id=owner,
    )
    if not lead["company_name"]:
        return (await create_client(principal, person, origin=origin, force=force)).id, None
    company = ClientCreate(
        kind="company", name=lead["company_name"], source=lead["source"], status=CLIENT_STATUS, responsible_id=owner
    )
    company_id = (await create_client(principal, company, origin=origin, force=force)).id
    person_id = (await create_client(principal, person, origin=origin, force=force)).id
    await link_company(principal, person_id, company_id, "", origin=origin)
    return company_id, person_id


def _in_deal(error: FieldError) -> FieldError:
    """A deal field's error named by its path in the conversion request (``deal.amount``)."""
    return FieldError(f"deal.{error.field}", error.detail) if error.field in DEAL_FIELDS else error
