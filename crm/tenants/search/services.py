"""One search box over clients, deals and tasks, ranked best first, within the caller's rights.

Ranking, as a salesperson expects it: a client whose phone, e-mail or tax id is exactly
what was typed comes first (score 1.0); then, for a partial number, phones ending in the
typed digits (0.95); then names and titles by trigram word similarity (below 1.0).

Text that reads as a contact — an e-mail address, or a number of five or more digits (a
phone in any format, the end of one, a tax id) — is looked up only as one: exact phones,
e-mails and tax ids, then the phone suffix, all from indexes. Names are not searched for
it; a name made of digits or an address is not what anyone types such text for.

Any other text is a name or title. Names are compared folded — lower case, ё as е — with
the same expression the trigram indexes are built on (``folded``), so "иванов" finds
"ИВАНОВ Пётр" and "петр" finds "Пётр". Each table is searched in two tiers, each with a
bounded number of rows fetched and scored, so a common word costs the same at 200,000
clients as at 2,000:

1. Contained: rows whose folded text holds every word typed (any order; a word under three
   letters must start a word). The trigram index finds them and the recheck is a plain
   LIKE; at most ``CONTAINED_CAP`` are read, and the ``POOL_PER_HIT × limit`` shortest of
   those (a shorter text holding the words is the closer one) are scored. Clients named
   exactly what was typed are read besides, should the cap cut them off.
2. Similar, for misspellings, only when tier 1 found fewer than ``limit`` hits in all, in the
   tables that found fewer than ``limit``:
   the spellings like each word (word similarity ≥ 0.5) are learnt from a sample of at
   most ``SPELLING_SAMPLE`` rows per table (``%>``, a trigram comparison each), and tier 1
   runs again with up to ``SPELLINGS_PER_WORD`` of them per word ("иваноф" → "иванов").
   Filtering the rights after a trigram comparison of every candidate would cost a manager
   who reads 5% of the rows twenty comparisons per row found.

Every query carries the rights condition of its entity (``records_in_scope``), and deals
are skipped when the edition has no deals module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from piccolo.querystring import QueryString

from crm.platform.auth import Principal
from crm.platform.editions import shipped_editions
from crm.platform.listing import escape_like
from crm.platform.sql import fetch_sql
from crm.platform.tenancy import read_in_tenant
from crm.tenants.clients.contacts import phone_region
from crm.tenants.clients.phones import phone_or_none
from crm.tenants.clients.tables import SEARCH_PHONES, Client, folded
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import records_in_scope

EXACT = 1.0
PHONE_SUFFIX = 0.95
# Similar words below this do not count (pg_trgm's default of 0.6 misses one-letter typos
# in short surnames; lower lets too much noise through the index).
WORD_SIMILARITY_THRESHOLD = 0.5
MIN_SUFFIX_DIGITS = 5
# Bounds per table and query. Tier 1 reads at most CONTAINED_CAP rows that hold the words
# (a LIKE recheck each, a few µs) and scores the POOL_PER_HIT × limit shortest; tier 2
# compares at most SPELLING_SAMPLE rows per table by trigrams (~20 µs each) to learn the
# spellings, then runs tier 1 with SPELLINGS_PER_WORD of them for each word.
CONTAINED_CAP = 1000
POOL_PER_HIT = 3
SPELLING_SAMPLE = 100
SPELLINGS_PER_WORD = 4
MIN_INDEXED_WORD = 3  # pg_trgm finds shorter words only where they start a word
PHONE_LIKE = re.compile(r"^[\d\s()+.-]+$")
EMAIL_LIKE = re.compile(r"^[^\s@]+@[^\s@]+$")
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


def is_contact(q: str) -> bool:
    """Whether ``q`` reads as an e-mail address or a number (phone, its end, tax id)."""
    if EMAIL_LIKE.fullmatch(q):
        return True
    return bool(PHONE_LIKE.fullmatch(q)) and sum(c.isdigit() for c in q) >= MIN_SUFFIX_DIGITS


# What a client lookup wants (the bot, the console's client list): no deals, no tasks.
CLIENTS_ONLY = frozenset({"clients"})


async def search(principal: Principal, q: str, limit: int, *, only: Collection[str] | None = None) -> list[Hit]:
    """The ``limit`` best hits for ``q`` among the records ``principal`` may read; ``only``
    names the kinds wanted (``{"clients"}``: the bot's client lookup), None for all."""
    edition = shipped_editions()[principal.tenant.edition]

    def may_read(module: str) -> bool:
        wanted = only is None or module in only
        return wanted and edition.has_module(module) and principal.scope(module, "read") != "none"

    async def work() -> list[Hit]:
        if is_contact(q):
            # Only clients have phones, e-mails and tax ids.
            return await _clients_by_contact(principal, q, limit) if may_read("clients") else []
        words = _words(q)
        if not words:
            return []
        sources: list[_Source] = []
        if may_read("clients"):
            sources.append(await _client_source(principal))
        if may_read("deals"):
            sources.append(await _deal_source(principal))
        if may_read("tasks"):
            sources.append(await _task_source(principal))
        hits = await _by_name(sources, q, words, limit)
        hits.sort(key=lambda hit: (-hit.score, TYPE_ORDER[hit.type], -hit.id))
        return hits[:limit]

    return await read_in_tenant(principal.tenant, work)


# --- contacts -------------------------------------------------------------------------------


async def _clients_by_contact(principal: Principal, q: str, limit: int) -> list[Hit]:
    scope = (await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)).querystring
    arms: list[str] = []
    args: list[Any] = []
    if "@" in q:
        arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE emails @> ARRAY[{{}}]::varchar[] AND ({{}})")
        args += [q.lower(), scope]
    else:
        phone = phone_or_none(q, await phone_region())
        if phone is not None:
            arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE phones @> ARRAY[{{}}]::varchar[] AND ({{}})")
            args += [phone, scope]
        digits = "".join(q.split())
        if TAX_ID.fullmatch(digits):
            arms.append(f"SELECT id, {EXACT} AS score FROM clients WHERE tax_id = {{}} AND ({{}})")
            args += [digits, scope]
    rows = await _client_rows(" UNION ALL ".join(arms), args, limit) if arms else []
    wanted_digits = "".join(character for character in q if character.isdigit())
    if "@" not in q and not any(row["score"] >= EXACT for row in rows):
        # The end of a number ("45-67-89"): a trigram index on the phones as one text
        # (SEARCH_PHONES, each number followed by a space) finds "…4567 89 " fast.
        suffix = (
            f"(SELECT id, {PHONE_SUFFIX} AS score FROM clients "
            f"WHERE {SEARCH_PHONES} LIKE {{}} AND ({{}}) ORDER BY id DESC LIMIT {{}})"
        )
        rows += await _client_rows(suffix, [f"%{escape_like(wanted_digits)} %", scope, limit], limit)
    best: dict[int, Any] = {}
    for row in rows:
        if row["id"] not in best or row["score"] > best[row["id"]]["score"]:
            best[row["id"]] = row
    return [_client_hit(row) for row in best.values()]


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


def _client_hit(row: Any) -> Hit:
    subtitle = " · ".join([row["kind"], *row["phones"][:1], *row["emails"][:1]])
    return Hit("client", row["id"], row["name"], subtitle, round(float(row["score"]), 4))


# --- names and titles -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """A table searched by name or title, within the caller's rights."""

    table: str
    column: str  # the name or title
    columns: str  # what ``hit`` reads of a row besides its id, name and score
    scope: QueryString  # the caller's read condition on it
    hit: Callable[[Any], Hit]
    exact: bool = False  # whether a text equal to the query is always read (an index serves it)


async def _client_source(principal: Principal) -> _Source:
    scope = await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)
    columns = "clients.kind, clients.phones, clients.emails"
    return _Source("clients", "name", columns, scope.querystring, _client_hit, exact=True)


async def _deal_source(principal: Principal) -> _Source:
    scope = await records_in_scope(principal, "deals", "read", Deal.responsible_id, Deal.author_id)
    columns = (
        "deals.amount, deals.currency, deals.status,"
        " (SELECT clients.name FROM clients WHERE clients.id = deals.client_id) AS client_name"
    )

    def hit(row: Any) -> Hit:
        subtitle = f"{row['client_name']} · {row['amount']:.2f} {row['currency']} · {row['status']}"
        return Hit("deal", row["id"], row["title"], subtitle, round(float(row["score"]), 4))

    return _Source("deals", "title", columns, scope.querystring, hit)


async def _task_source(principal: Principal) -> _Source:
    scope = await records_in_scope(principal, "tasks", "read", Task.assignee_id, Task.author_id)

    def hit(row: Any) -> Hit:
        subtitle = f"{row['status']} · due {row['due_at'].isoformat()}"
        return Hit("task", row["id"], row["title"], subtitle, round(float(row["score"]), 4))

    return _Source("tasks", "title", "tasks.status, tasks.due_at", scope.querystring, hit)


def _words(q: str) -> list[str]:
    """The words of ``q`` worth matching: those with a letter or digit, folded like the index."""
    return [word for word in q.lower().replace("ё", "е").split() if any(c.isalnum() for c in word)]


async def _by_name(sources: list[_Source], q: str, words: list[str], limit: int) -> list[Hit]:
    """The best hits of every source for ``q``: tier 1 with the words typed, then, when
    all together found fewer than ``limit``, tier 1 again with the spellings like them in
    the sources that found fewer than ``limit``."""
    best: dict[tuple[str, int], Hit] = {}

    async def find(source: _Source, spellings: list[list[str]], *, exact: bool) -> int:
        rows = await _ranked_rows(source, q, spellings, limit, exact=exact and source.exact)
        for row in rows:
            hit = source.hit(row)
            if (hit.type, hit.id) not in best or hit.score > best[hit.type, hit.id].score:
                best[hit.type, hit.id] = hit
        return len(rows)

    short = [source for source in sources if await find(source, [[word] for word in words], exact=True) < limit]
    # With enough hits holding the words, a misspelling's hits (less alike) would not show.
    if len(best) < limit and short and any(len(word) >= MIN_INDEXED_WORD for word in words):
        spellings = await _spellings(short, words)
        if spellings is not None:
            for source in short:
                await find(source, spellings, exact=False)  # the first pass read those
    return list(best.values())


def _contains(text: str, spellings: list[list[str]]) -> QueryString:
    """``text`` (folded SQL) holds one of the spellings of every word; a short one (no
    trigram of its own inside a word) must start a word, which pg_trgm indexes with its
    padding."""
    groups: list[str] = []
    args: list[Any] = []
    for alternatives in spellings:
        parts: list[str] = []
        for word in alternatives:
            pattern = escape_like(word)
            if len(word) >= MIN_INDEXED_WORD:
                parts.append(f"{text} LIKE {{}}")
                args.append(f"%{pattern}%")
            else:
                parts += [f"{text} LIKE {{}}", f"{text} LIKE {{}}"]
                args += [f"{pattern}%", f"% {pattern}%"]
        groups.append(f"({' OR '.join(parts)})")
    return QueryString(" AND ".join(groups), *args)


async def _ranked_rows(
    source: _Source, q: str, spellings: list[list[str]], limit: int, *, exact: bool = True
) -> list[Any]:
    """The ``limit`` rows of ``source`` closest to ``q`` among those the caller may read
    that hold a spelling of every word: at most CONTAINED_CAP read, the shortest
    ``POOL_PER_HIT × limit`` of them scored. With ``exact``, when the cap was reached
    (which rows it read is then the index's order) the rows whose text is ``q`` itself
    are read as well, through a b-tree on the folded text (clients_name_folded)."""
    table, column = source.table, source.column
    text = folded(f"{table}.{column}")
    return await fetch_sql(
        f"""
        WITH holding AS MATERIALIZED (
            SELECT id, {column} AS label FROM {table} WHERE {{}} AND ({{}}) LIMIT {CONTAINED_CAP}
        )
        SELECT {table}.id, {table}.{column}, {source.columns}, ranked.score
        FROM (
            SELECT id, {_score(folded("label"))} AS score
            FROM (
                SELECT id, label FROM (
                    SELECT id, label FROM holding
                    UNION
                    SELECT id, {column} FROM {table}
                    WHERE {{}} AND (SELECT count(*) FROM holding) = {CONTAINED_CAP} AND {text} = {_FOLD} AND ({{}})
                ) AS found
                ORDER BY length(label), id DESC
                LIMIT {{}}
            ) AS pool
            ORDER BY score DESC, id DESC
            LIMIT {{}}
        ) AS ranked
        JOIN {table} ON {table}.id = ranked.id
        ORDER BY ranked.score DESC, {table}.id DESC
        """,
        _contains(text, spellings),
        source.scope,
        q,
        q,
        QueryString("TRUE" if exact else "FALSE"),
        q,
        source.scope,
        limit * POOL_PER_HIT,
        limit,
    )


async def _spellings(sources: list[_Source], words: list[str]) -> list[list[str]] | None:
    """For each word, the few spellings like it (``<%``, word similarity ≥ 0.5) that the
    names or titles of ``sources`` use, closest first; None when a word has none.

    They come from a sample of at most SPELLING_SAMPLE rows per table with a word like each
    word (``%>``, each a trigram comparison), of the whole company, not just of what the
    caller may read: the sample only says which spellings exist. What the caller gets is
    then found by tier 1, whose LIKE recheck is cheap enough to read past the rows of
    others (a trigram comparison per row of the company would not be)."""
    # The planner prices %> as matching ~2% of rows, so under a LIMIT it prefers walking the
    # table (or the b-tree on name) and comparing row after row: 60,000 comparisons, 200 ms,
    # for a word few rows are like. Only the trigram index's candidates are worth comparing,
    # so from here to the end of this read-only transaction only bitmap scans are on offer
    # (the tier 1 searches that follow use them anyway).
    await fetch_sql(
        "SELECT set_config('pg_trgm.word_similarity_threshold', {}, true), set_config('enable_seqscan', 'off', true),"
        " set_config('enable_indexscan', 'off', true), set_config('enable_indexonlyscan', 'off', true)",
        str(WORD_SIMILARITY_THRESHOLD),
    )
    long_words = [word for word in words if len(word) >= MIN_INDEXED_WORD]
    samples = []
    args: list[Any] = []
    for source in sources:
        text = folded(f"{source.table}.{source.column}")
        alike = " AND ".join(f"{text} %> {{}}" for _ in long_words)
        samples.append(f"(SELECT {text} AS label FROM {source.table} WHERE {alike} LIMIT {SPELLING_SAMPLE})")
        args += long_words
    rows = await fetch_sql(
        f"""
        SELECT DISTINCT typed.word AS typed, found.word, similarity(typed.word, found.word) AS closeness
        FROM ({" UNION ALL ".join(samples)}) AS sample
        CROSS JOIN LATERAL regexp_split_to_table(sample.label, '[^[:alnum:]]+') AS found (word)
        JOIN unnest({{}}::text[]) AS typed (word) ON typed.word <% found.word
        ORDER BY closeness DESC, found.word
        """,
        *args,
        long_words,
    )
    spellings: dict[str, list[str]] = {word: [] for word in long_words}
    for row in rows:
        chosen = spellings[row["typed"]]
        # A spelling that holds a chosen one adds nothing: LIKE '%иванов%' finds "иванова".
        if len(chosen) < SPELLINGS_PER_WORD and not any(spelling in row["word"] for spelling in chosen):
            chosen.append(row["word"])
    if not all(spellings.values()):
        return None
    return [spellings.get(word, [word]) for word in words]
