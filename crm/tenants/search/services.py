"""One search box over clients, deals and tasks, ranked best first, within the caller's rights.

Ranking, as a salesperson expects it: a client whose phone, e-mail or tax id is exactly
what was typed comes first (score 1.0); then, for a partial number, phones ending in the typed digits (0.95);
then names and titles by trigram word similarity (below 1.0). Names are compared folded
— lower case, ё as е — with the same expression the trigram index is built on
(``SEARCH_NAME``), so "иванов" finds "ИВАНОВ Пётр" and "петр" finds "Пётр" through the
index. Every query carries the rights condition of its entity (records_in_scope), and
deals are skipped when the edition has no deals module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from piccolo.columns.combination import Combinable

from crm.platform.auth import Principal
from crm.platform.editions import shipped_editions
from crm.platform.listing import escape_like
from crm.platform.sql import fetch_sql
from crm.platform.tenancy import read_in_tenant
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.phones import phone_or_none
from crm.tenants.clients.tables import SEARCH_NAME, Client, folded
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import records_in_scope

EXACT = 1.0
PHONE_SUFFIX = 0.95
# Similar words below this do not count (pg_trgm's default of 0.6 misses one-letter typos
# in short surnames; lower lets too much noise through the index).
WORD_SIMILARITY_THRESHOLD = 0.5
MIN_SUFFIX_DIGITS = 5
CANDIDATES_PER_HIT = 3  # name candidates fetched per hit wanted, re-ranked by the full score
PHONE_LIKE = re.compile(r"^[\d\s()+.-]+$")
TAX_ID = re.compile(r"^\d{5,20}$")
TYPE_ORDER = {"client": 0, "deal": 1, "task": 2}

# Folded text and its closeness to the query: mostly "is the query a word of it",
# a little "is it the whole of it", so an exact name outranks a longer one; always < 1.
_FOLD = folded("{}")  # the query text, folded like the indexed names


def _score(text: str) -> str:
    """SQL for the closeness of the query (two ``{}`` placeholders) to the folded ``text``."""
    return f"0.99 * (0.7 * word_similarity({_FOLD}, {text}) + 0.3 * similarity({_FOLD}, {text}))"


@dataclass(frozen=True)
class Hit:
    type: str
    id: int
    title: str
    subtitle: str
    score: float


async def search(principal: Principal, q: str, limit: int) -> list[Hit]:
    """The ``limit`` best hits for ``q`` among the records ``principal`` may read."""
    edition = shipped_editions()[principal.tenant.edition]

    async def work() -> list[Hit]:
        await fetch_sql(
            "SELECT set_config('pg_trgm.word_similarity_threshold', {}, true)", str(WORD_SIMILARITY_THRESHOLD)
        )
        hits: list[Hit] = []
        if edition.has_module("clients") and principal.scope("clients", "read") != "none":
            hits += await _clients(principal, q, limit)
        if edition.has_module("deals") and principal.scope("deals", "read") != "none":
            hits += await _deals(principal, q, limit)
        if edition.has_module("tasks") and principal.scope("tasks", "read") != "none":
            hits += await _tasks(principal, q, limit)
        hits.sort(key=lambda hit: (-hit.score, TYPE_ORDER[hit.type], -hit.id))
        return hits[:limit]

    return await read_in_tenant(principal.tenant, work)


async def _clients(principal: Principal, q: str, limit: int) -> list[Hit]:
    scope = (await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)).querystring
    arms: list[str] = []
    args: list[Any] = []
    phone = phone_or_none(q, await phone_region())
    if phone is not None:
        arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE phones @> ARRAY[{{}}]::varchar[] AND ({{}})")
        args += [phone, scope]
    if "@" in q:
        arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE emails @> ARRAY[{{}}]::varchar[] AND ({{}})")
        args += [q.lower(), scope]
    digits = "".join(q.split())
    if TAX_ID.fullmatch(digits):
        arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE tax_id = {{}} AND ({{}})")
        args += [digits, scope]
    # Names with a word like the query (%>), nearest first straight from the GiST index
    # (<->> is 1 - word similarity): a common surname costs a few pages, not thousands of
    # scores. The pool is re-ranked by the full score, so among equally close words the
    # shorter, more exact name wins.
    arms.append(
        f"(SELECT id, {_score(SEARCH_NAME)} AS score FROM clients "
        f"WHERE {SEARCH_NAME} %> {_FOLD} AND ({{}}) ORDER BY {SEARCH_NAME} <->> {_FOLD} LIMIT {{}})"
    )
    args += [q, q, q, scope, q, limit * CANDIDATES_PER_HIT]
    rows = await _client_rows(" UNION ALL ".join(arms), args, limit)
    wanted_digits = "".join(character for character in q if character.isdigit())
    if (
        PHONE_LIKE.fullmatch(q)
        and len(wanted_digits) >= MIN_SUFFIX_DIGITS
        and not any(row["score"] >= EXACT for row in rows)
    ):
        # The end of a number ("45-67-89"). No index serves a suffix, so this one scan
        # runs only for number-like text that matched no phone exactly.
        suffix = (
            f"(SELECT id, {PHONE_SUFFIX} AS score FROM clients "
            "WHERE array_to_string(phones, ' ') || ' ' LIKE {} AND ({}) ORDER BY id DESC LIMIT {})"
        )
        rows += await _client_rows(suffix, [f"%{escape_like(wanted_digits)} %", scope, limit], limit)
    best: dict[int, Any] = {}
    for row in rows:
        if row["id"] not in best or row["score"] > best[row["id"]]["score"]:
            best[row["id"]] = row
    return [
        Hit("client", row["id"], row["name"], _client_subtitle(row), round(float(row["score"]), 4))
        for row in best.values()
    ]


async def _client_rows(arms: str, args: list[Any], limit: int) -> list[Any]:
    return await fetch_sql(
        f"""
        SELECT clients.id, clients.kind, clients.name, clients.phones, clients.emails, hits.score
        FROM (SELECT id, max(score) AS score FROM ({arms}) AS found GROUP BY id) AS hits
        JOIN clients ON clients.id = hits.id
        ORDER BY hits.score DESC, clients.id DESC
        LIMIT {{}}
        """,
        *args,
        limit,
    )


def _client_subtitle(row: Any) -> str:
    parts = [row["kind"], *row["phones"][:1], *row["emails"][:1]]
    return " · ".join(parts)


async def _deals(principal: Principal, q: str, limit: int) -> list[Hit]:
    allowed = await records_in_scope(principal, "deals", "read", Deal.responsible_id, Deal.author_id)
    columns = (
        "deals.amount, deals.currency, deals.status,"
        " (SELECT clients.name FROM clients WHERE clients.id = deals.client_id) AS client_name"
    )

    def subtitle(row: Any) -> str:
        return f"{row['client_name']} · {row['amount']:.2f} {row['currency']} · {row['status']}"

    return await _titled("deal", "deals", columns, subtitle, allowed, q, limit)


async def _tasks(principal: Principal, q: str, limit: int) -> list[Hit]:
    allowed = await records_in_scope(principal, "tasks", "read", Task.assignee_id, Task.author_id)

    def subtitle(row: Any) -> str:
        return f"{row['status']} · due {row['due_at'].isoformat()}"

    return await _titled("task", "tasks", "tasks.status, tasks.due_at", subtitle, allowed, q, limit)


async def _titled(
    kind: str, table: str, columns: str, subtitle: Callable[[Any], str], allowed: Combinable, q: str, limit: int
) -> list[Hit]:
    """The ``limit`` hits of ``kind`` among the rows of ``table`` (deals, tasks) that
    ``allowed`` takes in and whose folded title holds ``q`` or a word like it, closest
    first; ``columns`` are what ``subtitle`` reads of a row besides its id and title."""
    title = folded(f"{table}.title")
    rows = await fetch_sql(
        f"""
        SELECT {table}.id, {table}.title, {columns}, {_score(title)} AS score
        FROM {table}
        WHERE ({title} LIKE '%' || {_FOLD} || '%' OR {title} %> {_FOLD}) AND ({{}})
        ORDER BY score DESC, {table}.id DESC
        LIMIT {{}}
        """,
        q,
        q,
        escape_like(q),
        q,
        allowed.querystring,
        limit,
    )
    return [Hit(kind, row["id"], row["title"], subtitle(row), round(float(row["score"]), 4)) for row in rows]
