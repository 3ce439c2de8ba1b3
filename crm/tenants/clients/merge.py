"""Merging a duplicate client into another, in one transaction.

Everything that pointed at the other client (deals, activities, tasks, leads, people and
companies) moves to the survivor; contacts and tags are joined; the survivor's empty fields
take the other's values; then the other is deleted. Deals, tasks and leads get an audit row
each (their client changed); the moved activities are counted on the survivor's row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.sql import execute_sql, fetch_sql
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients._read import READ_COLUMNS, clients_in_scope, load_client
from crm.tenants.clients.schemas import ClientRead
from crm.tenants.clients.services import require_right
from crm.tenants.clients.tables import Client

# Owned records whose client moves, each audited as "<entity>.updated".
_MOVED_AND_AUDITED = (("deals", "deal"), ("tasks", "task"), ("leads", "lead"))
_UNION_FIELDS = ("phones", "emails", "tags", "messengers", "addresses")
_FILL_FIELDS = ("tax_id", "birthday", "responsible_id")

# Links of the other client that the survivor does not have yet move over; the rest go
# with the other client (ON DELETE CASCADE).
_MOVE_AS_PERSON = """
UPDATE client_relations SET person_id = {} WHERE person_id = {}
  AND company_id NOT IN (SELECT company_id FROM client_relations WHERE person_id = {})
"""
_MOVE_AS_COMPANY = """
UPDATE client_relations SET company_id = {} WHERE company_id = {}
  AND person_id NOT IN (SELECT person_id FROM client_relations WHERE company_id = {})
"""


async def merge_clients(principal: Principal, client_id: int, other_id: int, *, origin: Origin) -> ClientRead:
    """Fold ``other_id`` into ``client_id``; needs clients.update on both and clients.delete
    on the other. Returns the survivor."""
    require_right(principal, "update")
    require_right(principal, "delete")
    if client_id == other_id:
        raise InvalidInput("A client cannot be merged into itself.", errors=[FieldError("other_id", "is this client")])
    async with tenant_scope(principal.tenant):
        updatable = await clients_in_scope(principal, "update")
        # Both rows locked in id order, so two merges of the same pair cannot deadlock.
        rows = (
            await Client.select(*READ_COLUMNS)
            .where(Client.id.is_in([client_id, other_id]), updatable)
            .order_by(Client.id)
            .lock_rows("UPDATE")
            .output(load_json=True)
        )
        by_id = {row["id"]: row for row in rows}
        if client_id not in by_id:
            raise NotFound(f"There is no client {client_id}.")
        deletable = await clients_in_scope(principal, "delete")
        if other_id not in by_id or not await Client.exists().where(Client.id == other_id, deletable):
            raise NotFound(f"There is no client {other_id} you may merge away.")
        survivor, other = by_id[client_id], by_id[other_id]
        if survivor["kind"] != other["kind"]:
            raise InvalidInput(
                "Only clients of the same kind can be merged.",
                errors=[FieldError("other_id", f"is a {other['kind']}, this client is a {survivor['kind']}")],
            )
        moved = await _move_records(principal, client_id, other_id, origin=origin)
        diff = _merged_fields(survivor, other)
        changes: dict[Any, Any] = {getattr(Client, field): after for field, (_, after) in diff.items()}
        changes[Client.updated_at] = datetime.now(UTC)
        # The other goes first: its links that the survivor already has leave with it.
        await Client.delete().where(Client.id == other_id)
        await Client.update(changes).where(Client.id == client_id)
        await record_audit(
            origin.user(principal),
            "client.merged",
            entity="client",
            entity_id=client_id,
            changes={"merged_client_id": (None, other_id), **diff, **{k: (0, v) for k, v in moved.items() if v}},
        )
        gone = {field: (other[field], None) for field in ("kind", "name", "phones", "emails", "tax_id")}
        await record_audit(
            origin.user(principal),
            "client.deleted",
            entity="client",
            entity_id=other_id,
            changes={"merged_into": (None, client_id), **{k: v for k, v in gone.items() if v[0] not in (None, [])}},
        )
        return await load_client(principal, client_id, "update")


async def _move_records(principal: Principal, client_id: int, other_id: int, *, origin: Origin) -> dict[str, int]:
    """Point the other client's records at the survivor; counts by kind."""
    moved: dict[str, int] = {}
    actor = origin.user(principal)
    for table, entity in _MOVED_AND_AUDITED:
        rows = await fetch_sql(
            f"UPDATE {table} SET client_id = {{}}, updated_at = now() WHERE client_id = {{}} RETURNING id",
            client_id,
            other_id,
        )
        moved[f"moved_{table}"] = len(rows)
        for row in rows:
            await record_audit(
                actor,
                f"{entity}.updated",
                entity=entity,
                entity_id=row["id"],
                changes={"client_id": (other_id, client_id)},
            )
    status = await execute_sql("UPDATE activities SET client_id = {} WHERE client_id = {}", client_id, other_id)
    moved["moved_activities"] = int(status.split()[-1])
    for template in (_MOVE_AS_PERSON, _MOVE_AS_COMPANY):
        status = await execute_sql(template, client_id, other_id, client_id)
        moved["moved_links"] = moved.get("moved_links", 0) + int(status.split()[-1])
    return moved


def _merged_fields(survivor: dict[str, Any], other: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The survivor's changed fields: lists joined (survivor's entries first), empty fields
    filled, custom values it lacks added, the widest span of contact times."""
    merged: dict[str, Any] = {}
    for field in _UNION_FIELDS:
        merged[field] = survivor[field] + [item for item in other[field] if item not in survivor[field]]
    for field in _FILL_FIELDS:
        if survivor[field] is None:
            merged[field] = other[field]
    merged["custom"] = {**other["custom"], **survivor["custom"]}
    firsts = [value for value in (survivor["first_contact_at"], other["first_contact_at"]) if value is not None]
    lasts = [value for value in (survivor["last_contact_at"], other["last_contact_at"]) if value is not None]
    merged["first_contact_at"] = min(firsts) if firsts else None
    merged["last_contact_at"] = max(lasts) if lasts else None
    return {field: (survivor[field], value) for field, value in merged.items() if survivor[field] != value}
