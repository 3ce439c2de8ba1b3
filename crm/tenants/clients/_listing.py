"""The clients list: filters by field, free-text ``q``, custom-field filters, keyset pages.

Every condition is one an index answers at 200,000 clients: ``q`` matches the folded name
through the trigram index (``LIKE '%…%'``), phones and e-mails through their GIN indexes;
tags and custom values by containment (GIN); sorts page over (value, id) b-trees.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from piccolo.columns.combination import Combinable, WhereRaw

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import ListSpec, Ordering, escape_like, page_of, page_query
from crm.platform.tenancy import read_in_tenant
from crm.tenants.clients._read import READ_COLUMNS, clients_in_scope, with_relations
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.phones import phone_or_none
from crm.tenants.clients.schemas import ClientRead
from crm.tenants.clients.tables import SEARCH_NAME, Client
from crm.tenants.configuration.custom_fields import FieldDefinition, definitions

CLIENT_LIST = ListSpec(
    sortable={
        "id": Client.id,
        "name": Client.name,
        "created_at": Client.created_at,
        "updated_at": Client.updated_at,
    }
)


_IDS_WHERE = "id = ANY(ARRAY(SELECT id FROM clients WHERE {column} @> ARRAY[{{}}]::varchar[]))"


@dataclass(frozen=True)
class ClientFilters:
    kind: str | None = None
    status: str | None = None
    source: str | None = None
    responsible_id: int | None = None
    tag: str | None = None
    q: str | None = None
    created_at_from: datetime | None = None
    created_at_to: datetime | None = None
    # custom.<key>=<value> query parameters, as typed
    custom: dict[str, str] = field(default_factory=dict)
    # Only these clients (the console narrows search hits with the other filters).
    ids: tuple[int, ...] | None = None
    # Only clients nobody has contacted for this many days (see not_contacted_since).
    dormant_days: int | None = None


def not_contacted_since(threshold: datetime) -> Combinable:
    """Clients whose last completed activity is before ``threshold``, or that were never
    contacted and were created before it: what "dormant" means everywhere."""
    return (Client.last_contact_at < threshold) | (Client.last_contact_at.is_null() & (Client.created_at < threshold))


async def list_clients(
    principal: Principal, filters: ClientFilters, ordering: Ordering, cursor: str | None, limit: int
) -> tuple[list[ClientRead], str | None]:
    """One page of the clients ``principal`` may read, and the next page's cursor."""

    async def page() -> tuple[list[ClientRead], str | None]:
        query = Client.select(*READ_COLUMNS).where(await clients_in_scope(principal, "read"))
        for column, wanted in (
            (Client.kind, filters.kind),
            (Client.status, filters.status),
            (Client.source, filters.source),
            (Client.responsible_id, filters.responsible_id),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        if filters.tag is not None:
            query = query.where(WhereRaw("tags @> ARRAY[{}]::varchar[]", " ".join(filters.tag.split()).lower()))
        if filters.created_at_from is not None:
            query = query.where(Client.created_at >= filters.created_at_from)
        if filters.created_at_to is not None:
            query = query.where(Client.created_at < filters.created_at_to)
        if filters.q and filters.q.strip():
            query = query.where(await _text_match(filters.q.strip()))
        if filters.custom:
            query = query.where(WhereRaw("custom @> {}::jsonb", json.dumps(await _custom_match(filters.custom))))
        if filters.ids is not None:
            query = query.where(Client.id.is_in(list(filters.ids)) if filters.ids else WhereRaw("FALSE"))
        if filters.dormant_days is not None:
            query = query.where(not_contacted_since(datetime.now(UTC) - timedelta(days=filters.dormant_days)))
        rows = await page_query(query, ordering, cursor, limit).output(load_json=True).run()
        items, after = page_of(rows, ordering, limit)
        return await with_relations(principal, items), after

    return await read_in_tenant(principal.tenant, page)


async def _text_match(q: str) -> WhereRaw:
    """An e-mail equal to ``q``; a phone equal to ``q`` read as a number; else a name
    containing ``q`` (case and ё/е folded)."""
    # Exact contacts as a list of ids fetched first through their GIN index: as a plain
    # filter the planner, guessing hundreds of matches, would walk the sort order's index
    # past every client looking for the one or two that match.
    if "@" in q:
        return WhereRaw(_IDS_WHERE.format(column="emails"), q.lower())
    phone = phone_or_none(q, await phone_region())
    if phone is not None and not any(character.isalpha() for character in q):
        # Digits only: a number, not part of a name (and no trigram scan over digits).
        return WhereRaw(_IDS_WHERE.format(column="phones"), phone)
    condition = f"{SEARCH_NAME} LIKE translate(lower({{}}), 'ё', 'е')"
    return WhereRaw(condition, f"%{escape_like(q)}%")


async def _custom_match(wanted: dict[str, str]) -> dict[str, Any]:
    """The JSON object the client's ``custom`` must contain: each value in its canonical
    stored form, a multi-choice value as a one-element list (contained in the stored list)."""
    fields = await definitions("client")
    errors: list[FieldError] = []
    contained: dict[str, Any] = {}
    for key, raw in wanted.items():
        definition = fields.get(key)
        if definition is None:
            errors.append(FieldError(f"custom.{key}", "is not a custom field of clients"))
            continue
        try:
            contained[key] = _canonical_filter(definition, raw)
        except ValueError as problem:
            errors.append(FieldError(f"custom.{key}", str(problem)))
    if errors:
        raise InvalidInput("Some custom-field filters are not valid.", errors=errors)
    return contained


def _canonical_filter(definition: FieldDefinition, raw: str) -> Any:
    if definition.type == "number":
        try:
            number = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a number")
        return int(number) if number.is_integer() else number
    if definition.type == "boolean":
        if raw not in ("true", "false"):
            raise ValueError("must be true or false")
        return raw == "true"
    if definition.type == "date":
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if definition.type == "multi_choice":
        return [definition.canonical([raw])[0]]
    return definition.canonical(raw)
