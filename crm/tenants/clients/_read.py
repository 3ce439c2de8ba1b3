"""Loading clients as the API shows them: a page of rows plus their people/companies in
one more query (never one query per client)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
from piccolo.columns.combination import Combinable

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.sql import fetch_sql
from crm.tenants.clients.schemas import ClientRead, RelatedClient
from crm.tenants.clients.tables import Client
from crm.tenants.users.scopes import records_in_scope

READ_COLUMNS = (
    Client.id,
    Client.kind,
    Client.name,
    Client.phones,
    Client.emails,
    Client.messengers,
    Client.addresses,
    Client.tax_id,
    Client.source,
    Client.status,
    Client.responsible_id,
    Client.author_id,
    Client.tags,
    Client.custom,
    Client.birthday,
    Client.first_contact_at,
    Client.last_contact_at,
    Client.created_at,
    Client.updated_at,
)
OWNERS = (Client.responsible_id, Client.author_id)

# Both directions in one statement; each half walks its own index of client_relations.
# The related client's name is shown only when the caller may read that client.
_RELATED = """
SELECT client_relations.person_id AS owner_id, 'companies' AS side, clients.id, clients.name,
       client_relations.position
FROM client_relations JOIN clients ON clients.id = client_relations.company_id
WHERE client_relations.person_id = ANY({}) AND ({})
UNION ALL
SELECT client_relations.company_id, 'people', clients.id, clients.name, client_relations.position
FROM client_relations JOIN clients ON clients.id = client_relations.person_id
WHERE client_relations.company_id = ANY({}) AND ({})
ORDER BY 4, 3
"""


async def clients_in_scope(principal: Principal, action: str) -> Combinable:
    """SQL condition for the clients ``principal`` may ``action`` (read, update, delete, …)."""
    return await records_in_scope(principal, "clients", action, *OWNERS)


async def with_relations(principal: Principal, rows: list[dict[str, Any]]) -> list[ClientRead]:
    """``rows`` (selected with READ_COLUMNS) as ClientRead, people and companies filled in."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    readable = (await clients_in_scope(principal, "read")).querystring
    related: dict[tuple[int, str], list[RelatedClient]] = defaultdict(list)
    for link in await fetch_sql(_RELATED, ids, readable, ids, readable):
        related[(link["owner_id"], link["side"])].append(
            RelatedClient(id=link["id"], name=link["name"], position=link["position"])
        )
    clients = msgspec.convert(rows, list[ClientRead])
    for client in clients:
        client.companies = related.get((client.id, "companies"), [])
        client.people = related.get((client.id, "people"), [])
    return clients


async def load_client(principal: Principal, client_id: int, action: str = "read") -> ClientRead:
    """One client ``principal`` may ``action``, or 404 (a client one may not see does not exist)."""
    visible = await clients_in_scope(principal, action)
    row = await Client.select(*READ_COLUMNS).where(Client.id == client_id, visible).output(load_json=True).first()
    if row is None:
        raise NotFound(f"There is no client {client_id}.")
    return (await with_relations(principal, [row]))[0]
