"""What the search answers."""

from __future__ import annotations

import msgspec


class SearchHit(msgspec.Struct, kw_only=True):
    type: str  # client | deal | task
    id: int
    title: str
    subtitle: str
    score: float  # 1.0: an exact phone, e-mail or tax id; below: how close the name or title is


class SearchResults(msgspec.Struct, kw_only=True):
    items: list[SearchHit]
    q: str
