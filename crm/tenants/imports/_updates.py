"""``on_duplicate=update``: a row that matches an existing client changes it instead of
being skipped.

A row matches a client by phone, e-mail or tax id, the keys of the duplicate check. The
fields the row has (non-empty cells) overwrite the client's; lists — phones, e-mails,
tags, addresses — are merged, the client's entries first, within the limits the client
services enforce. A row matching several clients, or one the importer may not update, is
an error of that row. A batch costs three statements whatever its size: the matches, the
matched clients read and locked with the importer's rights, one UPDATE of every changed
client.

A row is a duplicate of an earlier row of the file when it shares a key with it, or when a
client it matches holds such a key (the earlier row created or updated that client). Which
line first had each key depends on the file alone, so a resumed job rebuilds it by parsing
the rows already done, and the same file imported again updates nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from crm.platform.auth import Principal
from crm.platform.errors import FieldError
from crm.platform.sql import fetch_sql
from crm.platform.tenancy import scope_connection
from crm.tenants.audit.services import AuditRecord
from crm.tenants.clients._input import MAX_CONTACTS, MAX_TAGS, check_kind_fields
from crm.tenants.clients._read import clients_in_scope
from crm.tenants.clients.contacts import MAX_EMAILS, MAX_PHONES
from crm.tenants.imports.rows import IMPORTED_FIELDS, ClientRow

Key = tuple[str, str]  # ("phone" | "email" | "tax_id", value)
# The row's field a key comes from, as errors name it.
FIELD_OF = {"phone": "phones", "email": "emails", "tax_id": "tax_id"}
# List fields are merged; the limit and the message are the client services' own.
_MERGED = {
    "phones": (MAX_PHONES, f"at most {MAX_PHONES} numbers"),
    "emails": (MAX_EMAILS, f"at most {MAX_EMAILS} addresses"),
    "tags": (MAX_TAGS, f"at most {MAX_TAGS} tags"),
    "addresses": (MAX_CONTACTS, f"at most {MAX_CONTACTS} entries"),
}
# Mapping targets that fill a client field of another name (custom fields merge by key).
_STORED_AS = {"address": "addresses", "responsible": "responsible_id"}
_SCALARS = tuple(name for name in IMPORTED_FIELDS if name not in _MERGED and name != "custom")

# The matched clients with what the importer may do to them, locked until the batch commits
# (in id order, so two imports updating the same clients cannot deadlock). The rights
# conditions name the table ``clients``: no alias.
_MATCHED_CLIENTS = """
SELECT id, kind, name, phones, emails, tax_id, status, source, tags, addresses::text AS addresses, birthday,
       custom::text AS custom, responsible_id,
       coalesce(({}), false) AS updatable, coalesce(({}), false) AS readable
FROM clients WHERE id = ANY({}::int[]) ORDER BY id FOR NO KEY UPDATE
"""
_RELATED = (
    "SELECT person_id AS id FROM client_relations WHERE person_id = ANY($1::int[])"
    " UNION SELECT company_id FROM client_relations WHERE company_id = ANY($1::int[])"
)
# One statement for the batch; the record type is the table's, so JSON arrays become
# varchar[] and the birthday text a date, as in the batch INSERT.
_UPDATE = (
    "UPDATE clients SET "
    + ", ".join(f'"{name}" = r."{name}"' for name in IMPORTED_FIELDS)
    + ", updated_at = now() FROM jsonb_populate_recordset(null::clients, $1::jsonb) AS r WHERE clients.id = r.id"
)


def row_keys(values: dict[str, Any]) -> list[Key]:
    keys = [("phone", phone) for phone in values["phones"]] + [("email", email) for email in values["emails"]]
    if values["tax_id"]:
        keys.append(("tax_id", values["tax_id"]))
    return keys


@dataclass
class FileKeys:
    """The line of the file that first had each phone, e-mail and tax id. Every row without
    errors claims its keys, whatever then becomes of it, so this depends on the file alone."""

    first_line: dict[Key, int] = field(default_factory=dict)

    def claim(self, row: ClientRow) -> None:
        for key in row_keys(row.values):
            self.first_line.setdefault(key, row.line)

    def earlier(self, keys: list[Key]) -> tuple[Key, int] | None:
        for key in keys:
            line = self.first_line.get(key)
            if line is not None:
                return key, line
        return None


@dataclass
class Matches:
    """A batch's valid rows sorted out: new clients, and updates of clients the importer may change."""

    new: list[ClientRow] = field(default_factory=list)
    updates: list[tuple[ClientRow, dict[str, Any]]] = field(default_factory=list)
    skipped: int = 0
    failed: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def problem(self, row: ClientRow, field_name: str, detail: str) -> None:
        self.problems.append({"row": row.line, "field": field_name, "detail": detail})


async def match_rows(principal: Principal, rows: list[ClientRow], keys_of_file: FileKeys, sql: str) -> Matches:
    """Sort ``rows`` (valid, in file order) by the clients they match; ``sql`` is the runner's
    duplicate check. Claims the rows' keys in ``keys_of_file``."""
    phones = sorted({phone for row in rows for phone in row.values["phones"]})
    emails = sorted({email for row in rows for email in row.values["emails"]})
    tax_ids = sorted({row.values["tax_id"] for row in rows if row.values["tax_id"]})
    found = await scope_connection().fetch(sql, phones, emails, tax_ids)
    owners: dict[Key, list[int]] = {}
    keys_of_client: dict[int, list[Key]] = {}
    for client in found:
        keys = row_keys({"phones": client["phones"], "emails": client["emails"], "tax_id": client["tax_id"]})
        keys_of_client[client["id"]] = keys
        for key in keys:
            owners.setdefault(key, []).append(client["id"])
    clients = await _locked_clients(principal, sorted(keys_of_client))
    outcome = Matches()
    for row in rows:
        keys = row_keys(row.values)
        matched: dict[int, str] = {}  # client id → the row's field that matched it first
        for key in keys:
            for client_id in owners.get(key, ()):
                if client_id in clients:  # else deleted since the lookup: no match
                    matched.setdefault(client_id, FIELD_OF[key[0]])
        # Its own keys first, then those of the clients it matches (an earlier row's client).
        earlier = keys_of_file.earlier(keys)
        for client_id in matched:
            earlier = earlier or keys_of_file.earlier(keys_of_client[client_id])
        keys_of_file.claim(row)
        if earlier is not None:
            (kind, _), line = earlier
            outcome.skipped += 1
            outcome.problem(row, kind, f"duplicate of line {line} of this file")
        elif not matched:
            outcome.new.append(row)
        elif len(matched) > 1:
            outcome.failed += 1
            second = list(matched)[1]
            outcome.problem(row, matched[second], _several(sorted(matched), clients))
        else:
            ((client_id, field_name),) = matched.items()
            client = clients[client_id]
            if client["updatable"]:
                outcome.updates.append((row, client))
            else:
                outcome.failed += 1
                seen = f"client {client_id}, which" if client["readable"] else "a client"
                outcome.problem(row, field_name, f"matches {seen} you may not update")
    return outcome


def _several(ids: list[int], clients: dict[int, dict[str, Any]]) -> str:
    # Like the API's duplicate check: ids of clients the importer may not read stay hidden.
    shown = [str(client_id) for client_id in ids if clients[client_id]["readable"]]
    hidden = len(ids) - len(shown)
    if hidden:
        shown.append(f"{hidden} you may not see")
    return f"matches several clients: {', '.join(shown)}"


async def _locked_clients(principal: Principal, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    updatable = await clients_in_scope(principal, "update")
    readable = await clients_in_scope(principal, "read")
    rows = await fetch_sql(_MATCHED_CLIENTS, updatable.querystring, readable.querystring, ids)
    clients = {}
    for row in rows:
        client = dict(row)
        client["addresses"] = json.loads(client["addresses"])
        client["custom"] = json.loads(client["custom"])
        birthday: date | None = client["birthday"]
        client["birthday"] = None if birthday is None else birthday.isoformat()  # as rows hold it
        client["phones"], client["emails"], client["tags"] = list(row["phones"]), list(row["emails"]), list(row["tags"])
        clients[client["id"]] = client
    return clients


@dataclass
class Applied:
    audit: list[AuditRecord] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)


async def apply_updates(updates: list[tuple[ClientRow, dict[str, Any]]]) -> Applied:
    """Write the rows' values onto their clients in one statement; a ``client.updated``
    audit record per changed client, with the changed fields only."""
    applied = Applied()
    planned = [(row, client, *_merged(row, client)) for row, client in updates]
    kind_changed = [client["id"] for _, client, values, _ in planned if values["kind"] != client["kind"]]
    related = (
        {record["id"] for record in await scope_connection().fetch(_RELATED, kind_changed)} if kind_changed else set()
    )
    records = []
    for row, client, values, errors in planned:
        if values["kind"] != client["kind"] and client["id"] in related:
            errors.append(FieldError("kind", "unlink the client's people or companies before changing its kind"))
        if errors:
            applied.failed += 1
            applied.problems += [{"row": row.line, "field": e.field, "detail": e.detail} for e in errors]
            continue
        diff = {name: (client[name], values[name]) for name in IMPORTED_FIELDS if client[name] != values[name]}
        if not diff:
            applied.unchanged += 1
            continue
        records.append({"id": client["id"], **values})
        applied.audit.append(AuditRecord("client.updated", "client", client["id"], diff))
    if records:
        await scope_connection().execute(_UPDATE, json.dumps(records))
    applied.updated = len(records)
    return applied


def _merged(row: ClientRow, client: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """The client's values after the row: the row's given scalars, lists merged, custom
    fields by key; and what is wrong with the result."""
    errors: list[FieldError] = []
    given = {_STORED_AS.get(target, target) for target in row.given}
    # A cell that cleans to nothing (a tax id without digits) does not erase the client's value.
    values = {
        name: row.values[name] if name in given and row.values[name] is not None else client[name] for name in _SCALARS
    }
    for name, (limit, message) in _MERGED.items():
        merged = list(client[name])
        merged += [item for item in row.values[name] if item not in merged]
        if len(merged) > limit:
            errors.append(FieldError(name, message))
        values[name] = merged
    values["custom"] = {**client["custom"], **row.values["custom"]}
    birthday = values["birthday"]
    check_kind_fields(values["kind"], None if birthday is None else date.fromisoformat(birthday), errors)
    return values, errors
