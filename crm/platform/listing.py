"""The parameters every list endpoint shares, named the same way everywhere.

- ``limit`` (1–200, default 50) and ``cursor`` (opaque; pass the page's ``next_cursor``).
  Answers are ``{"items": [...], "next_cursor": ...}``; ``next_cursor`` is null on the
  last page.
- ``sort``: one field from the endpoint's list, ``-`` in front for descending
  (``sort=-created_at``). Ties are broken by ``id`` in the same direction, so a page
  boundary never skips or repeats a row (keyset pagination, not OFFSET).
- ``q``: free-text search, on endpoints that have it.
- A field's own name filters by equality (``?role=manager``); ``<field>_from``
  (inclusive) and ``<field>_to`` (exclusive) bound ranges of times and numbers.

Unknown sort fields and cursors from another sort order answer 422 naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar.params import QueryParameter
from piccolo.columns import Column
from piccolo.columns.combination import WhereRaw
from piccolo.query import Select

from crm.platform.errors import FieldError, InvalidInput

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# Ids are PostgreSQL integers; larger values from clients are refused, not overflowed.
MAX_ID = 2**31 - 1

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page (1–200)")]
Cursor = Annotated[str | None, QueryParameter(description="The `next_cursor` of the previous page")]
Sort = Annotated[str | None, QueryParameter(description="A sortable field, `-` in front for descending")]
# An id as a filter (``?client_id=``): bounded, so a huge number is a 422, not a database error.
IdFilter = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="An id")]


class _CursorState(msgspec.Struct, array_like=True):
    sort: str
    value: Any
    last_id: int


@dataclass(frozen=True)
class Ordering:
    """One validated ``sort`` value: the field, its column and the direction."""

    field: str
    column: Column
    descending: bool

    @property
    def name(self) -> str:
        return f"-{self.field}" if self.descending else self.field


@dataclass(frozen=True)
class ListSpec:
    """What one list endpoint may be sorted by, and its default order.

    Sortable columns must be NOT NULL: the keyset comparison has no place for NULLs."""

    sortable: Mapping[str, Column]
    default_sort: str = "id"

    def ordering(self, sort: str | None) -> Ordering:
        wanted = sort or self.default_sort
        field = wanted.removeprefix("-")
        if field not in self.sortable:
            allowed = ", ".join(sorted(self.sortable))
            raise InvalidInput(
                f"Cannot sort by {field!r}.", errors=[FieldError("sort", f"must be one of {allowed}, - for descending")]
            )
        return Ordering(field, self.sortable[field], wanted.startswith("-"))


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (``%`` and ``_`` match only themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_query(query: Select, ordering: Ordering, cursor: str | None, limit: int) -> Select:
    """``query`` ordered, limited to one page plus one row (to know whether more follow),
    and starting after the cursor's row."""
    id_column = query.table._meta.primary_key
    query = query.order_by(ordering.column, ascending=not ordering.descending)
    if ordering.field != "id":
        query = query.order_by(id_column, ascending=not ordering.descending)
    if cursor:
        state = _decode(cursor, ordering)
        after = "<" if ordering.descending else ">"
        column = f'"{ordering.column._meta.db_column_name}"'
        if ordering.field == "id":
            query = query.where(WhereRaw(f"{column} {after} {{}}", state.last_id))
        else:
            # (sort value, id) strictly after the last row of the previous page. A row
            # comparison, so PostgreSQL uses it as an index condition on the sort column.
            query = query.where(WhereRaw(f"({column}, id) {after} ({{}}, {{}})", state.value, state.last_id))
    return query.limit(limit + 1)


def page_of(rows: Sequence[dict[str, Any]], ordering: Ordering, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """The page's rows and the cursor of the next page (None on the last page)."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    last = items[-1]
    state = _CursorState(sort=ordering.name, value=last[ordering.field], last_id=last["id"])
    return items, base64.urlsafe_b64encode(msgspec.json.encode(state)).decode().rstrip("=")


def _decode(cursor: str, ordering: Ordering) -> _CursorState:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        state = msgspec.json.decode(raw, type=_CursorState)
        if state.sort != ordering.name or not 0 <= state.last_id <= MAX_ID:
            raise ValueError(state.sort)
        value_type = ordering.column.value_type
        state.value = msgspec.convert(state.value, value_type, strict=False)
        return state
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput(
            "The cursor is not valid for this list and sort order.",
            errors=[FieldError("cursor", "is not a valid cursor for this sort order")],
        ) from None
