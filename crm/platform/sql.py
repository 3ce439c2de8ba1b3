"""Raw SQL with Piccolo conditions inside, for the few queries the query builder cannot say
(array overlap, trigram ranking, set-based merges).

``records_in_scope`` returns a Piccolo condition; :func:`fetch_sql` lets it sit inside a
hand-written statement, numbered together with the statement's own arguments, so the
rights filter is applied in SQL exactly as in builder queries. Conditions render their
columns with their table's own name (``"clients"."…"``): refer to the table by that name,
without an alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any

import asyncpg
from piccolo.querystring import QueryString

from crm.platform.tenancy import scope_connection


def compile_sql(template: str, *args: Any) -> tuple[str, list[Any]]:
    """``template`` with ``{}`` placeholders filled by ``args`` (values or QueryStrings)."""
    sql, values = QueryString(template, *args).compile_string(engine_type="postgres")
    return sql, list(values)


def compile_named(template: str, parts: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """Like :func:`compile_sql` for a long template with named placeholders (``{readable}``);
    a name may appear several times (each use becomes its own numbered argument)."""
    positional: list[str] = []
    args: list[Any] = []
    for literal, name, _, _ in Formatter().parse(template):
        positional.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            positional.append("{}")
            args.append(parts[name])
    return compile_sql("".join(positional), *args)


async def fetch_sql(template: str, *args: Any) -> list[asyncpg.Record]:
    """Run ``template`` in the open tenant scope and return its rows."""
    sql, values = compile_sql(template, *args)
    rows: list[asyncpg.Record] = await scope_connection().fetch(sql, *values)
    return rows


async def execute_sql(template: str, *args: Any) -> str:
    sql, values = compile_sql(template, *args)
    status: str = await scope_connection().execute(sql, *values)
    return status
