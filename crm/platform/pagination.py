"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next_cursor": ...}``.

Pages are in id order; the cursor is an opaque encoding of the last id of a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from crm.platform.errors import FieldError, InvalidInput

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# Ids are PostgreSQL integers; larger values from clients are refused, not overflowed.
MAX_ID = 2**31 - 1


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        last_id = int(value)
        if prefix != "id" or not 0 <= last_id <= MAX_ID:
            raise ValueError(raw)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("The cursor is not valid.", errors=[FieldError("cursor", "is not a valid cursor")]) from None


def next_cursor(items: Sequence[Any], limit: int, *, has_more: bool) -> str | None:
    """The cursor of the page after ``items`` (rows or structs with an ``id``), if any."""
    if not has_more or not items:
        return None
    last = items[min(limit, len(items)) - 1]
    return encode_cursor(last["id"] if isinstance(last, dict) else last.id)
