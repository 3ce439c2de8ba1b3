"""Every change to clients, shared by the API, the bot, lead conversion and imports.

Each function takes the acting ``principal`` and a keyword-only ``origin``, runs in one
tenant transaction (joining the caller's if one is open for the same tenant) and writes
one audit row per changed client with field-level before/after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients._duplicates import refuse_duplicates
from crm.tenants.clients._input import check_kind_fields, clean_fields
from crm.tenants.clients._read import READ_COLUMNS, clients_in_scope, load_client, with_relations
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.schemas import ClientCreate, ClientRead, ClientUpdate
from crm.tenants.clients.tables import Client, ClientRelation
from crm.tenants.configuration.custom_fields import clean_custom
from crm.tenants.configuration.limits import ensure_room
from crm.tenants.deals.tables import Deal
from crm.tenants.users.scopes import assignee_problems

MAX_POSITION = 200


def require_right(principal: Principal, action: str) -> None:
    """403 unless the role grants ``clients.<action>`` at all (the route guard does the
    same; service callers outside HTTP — bot, lead conversion — rely on this one)."""
    if principal.scope("clients", action) == "none":
        raise Forbidden(f"Your role does not allow {action} on clients.", permission=f"clients.{action}")


async def create_client(principal: Principal, data: ClientCreate, *, origin: Origin, force: bool = False) -> ClientRead:
    """Add a client. Every bad field is reported at once (422); a client with the same
    phone, e-mail or tax id answers 409 with the duplicates, unless ``force``."""
    require_right(principal, "create")
    async with tenant_scope(principal.tenant):
        errors: list[FieldError] = []
        values = clean_fields(data, await phone_region(), errors)
        check_kind_fields(data.kind, data.birthday, errors)
        values["custom"] = await clean_custom(principal, "client", data.custom, None, errors)
        if errors:
            raise InvalidInput("The client has invalid fields.", errors=errors)
        values["responsible_id"] = data.responsible_id or principal.user_id
        await _ensure_assignable(principal, values["responsible_id"])
        if not force:
            await refuse_duplicates(
                principal, phones=values["phones"], emails=values["emails"], tax_id=values["tax_id"]
            )
        values["author_id"] = principal.user_id
        await ensure_room(principal, "clients")
        rows = await Client.insert(Client(**values)).returning(Client.id)
        client_id = int(rows[0]["id"])
        await record_audit(
            origin.user(principal),
            "client.created",
            entity="client",
            entity_id=client_id,
            changes={field: (None, value) for field, value in values.items() if value not in (None, [], {})},
        )
        return await load_client(principal, client_id, "create")


async def update_client(
    principal: Principal, client_id: int, data: ClientUpdate, *, origin: Origin, force: bool = False
) -> ClientRead:
    """Change the fields ``data`` sets. ``custom`` is merged into the current values; new
    phones, e-mails or tax id that another client has answer 409 unless ``force``."""
    require_right(principal, "update")
    async with tenant_scope(principal.tenant):
        current = await _locked(principal, client_id, "update")
        errors: list[FieldError] = []
        values = clean_fields(data, await phone_region(), errors)
        kind = values.get("kind", current["kind"])
        birthday = values.get("birthday", current["birthday"])
        check_kind_fields(kind, birthday, errors)
        if kind != current["kind"] and await _has_relations(client_id):
            errors.append(FieldError("kind", "unlink the client's people or companies before changing its kind"))
        if data.custom is not msgspec.UNSET:
            values["custom"] = await clean_custom(principal, "client", data.custom, current["custom"], errors)
        if errors:
            raise InvalidInput("The client change has invalid fields.", errors=errors)
        diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
        if "responsible_id" in diff:
            await _ensure_assignable(principal, diff["responsible_id"][1])
        if not force:
            # Only what this change adds: a duplicate saved earlier with force stays allowed.
            await refuse_duplicates(
                principal,
                phones=[phone for phone in values.get("phones", []) if phone not in current["phones"]],
                emails=[email for email in values.get("emails", []) if email not in current["emails"]],
                tax_id=diff["tax_id"][1] if "tax_id" in diff else None,
                exclude_id=client_id,
            )
        if diff:
            changes: dict[Any, Any] = {getattr(Client, field): after for field, (_, after) in diff.items()}
            changes[Client.updated_at] = datetime.now(UTC)
            await Client.update(changes).where(Client.id == client_id)
            await record_audit(
                origin.user(principal), "client.updated", entity="client", entity_id=client_id, changes=diff
            )
        return await load_client(principal, client_id, "update")


async def delete_client(principal: Principal, client_id: int, *, origin: Origin) -> None:
    """Delete a client with no deals (deals keep their client; close or move them first).
    Its activities go with it; tasks and leads stay, unlinked."""
    require_right(principal, "delete")
    async with tenant_scope(principal.tenant):
        current = await _locked(principal, client_id, "delete")
        deals = await Deal.count().where(Deal.client_id == client_id)
        if deals:
            raise Conflict(
                f"The client has {deals} deal(s); delete them or move them to another client first "
                "(or merge this client into another).",
                deals=deals,
            )
        await Client.delete().where(Client.id == client_id)
        await record_audit(
            origin.user(principal),
            "client.deleted",
            entity="client",
            entity_id=client_id,
            changes=_gone(current),
        )


async def link_company(
    principal: Principal, person_id: int, company_id: int, position: str, *, origin: Origin
) -> ClientRead:
    """Record that a person works at a company (or change their position there)."""
    require_right(principal, "update")
    async with tenant_scope(principal.tenant):
        person = await _locked(principal, person_id, "update")
        readable = await clients_in_scope(principal, "read")
        company = await Client.select(Client.kind).where(Client.id == company_id, readable).first()
        errors = []
        if person["kind"] != "person":
            errors.append(FieldError("person_id", "is not a person"))
        if company is None:
            errors.append(FieldError("company_id", "no such client"))
        elif company["kind"] != "company":
            errors.append(FieldError("company_id", "is not a company"))
        position = " ".join(position.split())
        if len(position) > MAX_POSITION:
            errors.append(FieldError("position", f"at most {MAX_POSITION} characters"))
        if errors:
            raise InvalidInput("The link has invalid fields.", errors=errors)
        before = (
            await ClientRelation.select(ClientRelation.position)
            .where(ClientRelation.person_id == person_id, ClientRelation.company_id == company_id)
            .first()
        )
        if before is None:
            await ClientRelation.insert(ClientRelation(person_id=person_id, company_id=company_id, position=position))
        elif before["position"] != position:
            await ClientRelation.update({ClientRelation.position: position}).where(
                ClientRelation.person_id == person_id, ClientRelation.company_id == company_id
            )
        if before is None or before["position"] != position:
            await record_audit(
                origin.user(principal),
                "client.company_linked",
                entity="client",
                entity_id=person_id,
                changes={
                    "company_id": (None if before is None else company_id, company_id),
                    "position": (None if before is None else before["position"], position),
                },
            )
        return await load_client(principal, person_id, "update")


async def unlink_company(principal: Principal, person_id: int, company_id: int, *, origin: Origin) -> None:
    """The person no longer works at the company."""
    require_right(principal, "update")
    async with tenant_scope(principal.tenant):
        await _locked(principal, person_id, "update")
        removed = (
            await ClientRelation.delete()
            .where(ClientRelation.person_id == person_id, ClientRelation.company_id == company_id)
            .returning(ClientRelation.position)
        )
        if not removed:
            raise NotFound(f"Client {person_id} is not linked to company {company_id}.")
        await record_audit(
            origin.user(principal),
            "client.company_unlinked",
            entity="client",
            entity_id=person_id,
            changes={"company_id": (company_id, None), "position": (removed[0]["position"], None)},
        )


async def _locked(principal: Principal, client_id: int, action: str) -> dict[str, Any]:
    """The client's row, locked until the transaction ends, if ``principal`` may ``action`` it."""
    allowed = await clients_in_scope(principal, action)
    row: dict[str, Any] | None = (
        await Client.select(*READ_COLUMNS)
        .where(Client.id == client_id, allowed)
        .lock_rows("NO KEY UPDATE")
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound(f"There is no client {client_id}.")
    return row


async def _has_relations(client_id: int) -> bool:
    return bool(
        await ClientRelation.exists().where(
            (ClientRelation.person_id == client_id) | (ClientRelation.company_id == client_id)
        )
    )


def _gone(row: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Audit changes of a deleted client: what it held, each becoming null."""
    kept = ("kind", "name", "phones", "emails", "tax_id", "status", "responsible_id")
    return {field: (row[field], None) for field in kept if row[field] not in (None, [], {})}


__all__ = [
    "ClientCreate",
    "ClientRead",
    "ClientUpdate",
    "create_client",
    "delete_client",
    "link_company",
    "require_right",
    "unlink_company",
    "update_client",
    "with_relations",
]


async def _ensure_assignable(principal: Principal, user_id: int) -> None:
    problems = await assignee_problems(principal, "clients", user_id)
    if problems:
        raise InvalidInput("The client cannot be given to that user.", errors=problems)
