"""Leads: creating, changing, qualifying, disqualifying and deleting — every channel shares
these (the bot and web forms create leads too). Conversion is in :mod:`.conversion`.

Each function opens the tenant scope itself (joining one already open), finds the lead
through the caller's rights in SQL (404 when out of reach), validates every field at
once, writes and audits. A converted lead is history: it can be read and deleted, not
changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.contacts import clean_emails, clean_phones, phone_region
from crm.tenants.configuration.custom_fields import clean_custom
from crm.tenants.leads.schemas import EDITABLE_STATUSES, SOURCES, LeadCreate, LeadUpdate
from crm.tenants.leads.tables import Lead
from crm.tenants.users.scopes import assignee_problems, records_in_scope, row_in_scope

MAX_NAME = 300
MAX_NOTE = 10_000
MAX_REASON = 300
OWNERS = (Lead.responsible_id, Lead.author_id)

READ_COLUMNS = (
    Lead.id,
    Lead.name,
    Lead.company_name,
    Lead.phones,
    Lead.emails,
    Lead.source,
    Lead.status,
    Lead.note,
    Lead.disqualified_reason,
    Lead.custom,
    Lead.responsible_id,
    Lead.author_id,
    Lead.client_id,
    Lead.deal_id,
    Lead.converted_at,
    Lead.created_at,
    Lead.updated_at,
)
AUDITED = (
    "name",
    "company_name",
    "phones",
    "emails",
    "source",
    "status",
    "note",
    "disqualified_reason",
    "custom",
    "responsible_id",
    "client_id",
    "deal_id",
    "converted_at",
)


# ---------------------------------------------------------------- field rules


def clean_text(field: str, raw: str, errors: list[FieldError], *, required: bool, limit: int) -> str:
    text = " ".join(raw.split()) if field != "note" else raw.strip()
    if (required and not text) or len(text) > limit:
        errors.append(FieldError(field, f"must be {1 if required else 0} to {limit} characters"))
    return text


def source_problems(source: str) -> list[FieldError]:
    return [] if source in SOURCES else [FieldError("source", f"must be one of {', '.join(SOURCES)}")]


# ---------------------------------------------------------------- reading


async def lead_in_scope(principal: Principal, lead_id: int, action: str, *, lock: bool = False) -> dict[str, Any]:
    """The lead if the caller may ``action`` it, else 404 (inside the open tenant scope)."""
    allowed = await records_in_scope(principal, "leads", action, *OWNERS)
    return await row_in_scope(Lead, READ_COLUMNS, lead_id, allowed, noun="lead", action=action, lock=lock)


async def load_lead(lead_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = (
        await Lead.select(*READ_COLUMNS).where(Lead.id == lead_id).output(load_json=True).first()
    )
    assert row is not None
    return row


def refuse_converted(lead: dict[str, Any]) -> None:
    if lead["status"] == "converted":
        raise Conflict(
            f"Lead {lead['id']} is converted; it can no longer change.",
            client_id=lead["client_id"],
            deal_id=lead["deal_id"],
        )


# ---------------------------------------------------------------- changes


async def create_lead(principal: Principal, data: LeadCreate, *, origin: Origin) -> dict[str, Any]:
    """A new lead (status new); returns it."""
    errors: list[FieldError] = []
    name = clean_text("name", data.name, errors, required=True, limit=MAX_NAME)
    company_name = clean_text("company_name", data.company_name, errors, required=False, limit=MAX_NAME)
    note = clean_text("note", data.note, errors, required=False, limit=MAX_NOTE)
    errors += source_problems(data.source)
    emails = clean_emails(data.emails, errors)
    responsible_id = principal.user_id if data.responsible_id is None else data.responsible_id
    async with tenant_scope(principal.tenant):
        phones = clean_phones(data.phones, await phone_region(), errors)
        errors += await assignee_problems(principal, "leads", responsible_id)
        custom = await clean_custom(principal, "lead", data.custom, None, errors)
        if errors:
            raise InvalidInput("The lead has invalid fields.", errors=errors)
        values: dict[str, Any] = {
            "name": name,
            "company_name": company_name,
            "phones": phones,
            "emails": emails,
            "source": data.source,
            "note": note,
            "custom": custom,
            "responsible_id": responsible_id,
        }
        rows = await Lead.insert(Lead(**values, author_id=principal.user_id)).returning(Lead.id)
        lead_id = int(rows[0]["id"])
        await record_audit(
            origin.user(principal),
            "lead.created",
            entity="lead",
            entity_id=lead_id,
            changes={field: (None, value) for field, value in values.items() if value not in (None, "", [], {})},
        )
        return await load_lead(lead_id)


async def update_lead(principal: Principal, lead_id: int, data: LeadUpdate, *, origin: Origin) -> dict[str, Any]:
    """Change the fields ``data`` sets; returns the lead."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if data.name is not msgspec.UNSET:
        values["name"] = clean_text("name", data.name, errors, required=True, limit=MAX_NAME)
    if data.company_name is not msgspec.UNSET:
        values["company_name"] = clean_text("company_name", data.company_name, errors, required=False, limit=MAX_NAME)
    if data.note is not msgspec.UNSET:
        values["note"] = clean_text("note", data.note, errors, required=False, limit=MAX_NOTE)
    if data.source is not msgspec.UNSET:
        errors += source_problems(data.source)
        values["source"] = data.source
    if data.status is not msgspec.UNSET:
        if data.status not in EDITABLE_STATUSES:
            errors.append(
                FieldError("status", "must be new or in_progress (qualify, disqualify and convert have actions)")
            )
        values["status"] = data.status
    if data.emails is not msgspec.UNSET:
        values["emails"] = clean_emails(data.emails, errors)
    async with tenant_scope(principal.tenant):
        current = await lead_in_scope(principal, lead_id, "update", lock=True)
        refuse_converted(current)
        if data.phones is not msgspec.UNSET:
            values["phones"] = clean_phones(data.phones, await phone_region(), errors)
        if data.responsible_id is not msgspec.UNSET and data.responsible_id != current["responsible_id"]:
            errors += await assignee_problems(principal, "leads", data.responsible_id)
            values["responsible_id"] = data.responsible_id
        if data.custom is not msgspec.UNSET:
            values["custom"] = await clean_custom(principal, "lead", data.custom, current["custom"], errors)
        if errors:
            raise InvalidInput("The lead change has invalid fields.", errors=errors)
        if values.get("status") in EDITABLE_STATUSES and current["status"] == "disqualified":
            values["disqualified_reason"] = None
        return await _apply(principal, current, values, "lead.updated", origin=origin)


async def qualify_lead(principal: Principal, lead_id: int, *, origin: Origin) -> dict[str, Any]:
    """The lead is worth working on (status qualified); a disqualified lead may be
    qualified again."""
    async with tenant_scope(principal.tenant):
        current = await lead_in_scope(principal, lead_id, "update", lock=True)
        refuse_converted(current)
        values = {"status": "qualified", "disqualified_reason": None}
        return await _apply(principal, current, values, "lead.qualified", origin=origin)


async def disqualify_lead(principal: Principal, lead_id: int, reason: str, *, origin: Origin) -> dict[str, Any]:
    """The lead is not worth working on, for ``reason`` (status disqualified)."""
    errors: list[FieldError] = []
    reason = clean_text("reason", reason, errors, required=True, limit=MAX_REASON)
    async with tenant_scope(principal.tenant):
        current = await lead_in_scope(principal, lead_id, "update", lock=True)
        refuse_converted(current)
        if errors:
            raise InvalidInput("The reason is missing.", errors=errors)
        values = {"status": "disqualified", "disqualified_reason": reason}
        return await _apply(principal, current, values, "lead.disqualified", origin=origin)


async def delete_lead(principal: Principal, lead_id: int, *, origin: Origin) -> None:
    """Delete a lead (a converted one too: its client and deal stay)."""
    async with tenant_scope(principal.tenant):
        current = await lead_in_scope(principal, lead_id, "delete", lock=True)
        await Lead.delete().where(Lead.id == lead_id)
        await record_audit(
            origin.user(principal),
            "lead.deleted",
            entity="lead",
            entity_id=lead_id,
            changes={field: (current[field], None) for field in AUDITED if current[field] not in (None, "", [], {})},
        )


async def _apply(
    principal: Principal, current: dict[str, Any], values: dict[str, Any], action: str, *, origin: Origin
) -> dict[str, Any]:
    """Write what differs from ``current`` and audit it as ``action``; returns the lead."""
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if not diff:
        return current
    changes: dict[Any, Any] = {getattr(Lead, field): after for field, (_, after) in diff.items()}
    await Lead.update({**changes, Lead.updated_at: datetime.now(UTC)}).where(Lead.id == current["id"])
    await record_audit(origin.user(principal), action, entity="lead", entity_id=current["id"], changes=diff)
    return await load_lead(current["id"])
