"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next_cursor": ...}``."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from crm.platform.errors import FieldError, InvalidInput

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "id":
            raise ValueError(raw)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("The cursor is not valid.", errors=[FieldError("cursor", "is not a valid cursor")]) from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("The limit is out of range.", errors=[FieldError("limit", f"must be 1 to {MAX_LIMIT}")])
    return limit


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """Build a page from up to ``limit + 1`` rows fetched in id order."""
    has_more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if has_more and items else None}
