"""Files kept with an activity: for now the voice note or audio file a call was logged with
from the bot. Written only together with their activity (``create_activity(…,
attachments=…)``, one transaction) and read through the activity's own rights.

Every function runs inside the caller's open ``tenant_scope``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from crm.platform.errors import FieldError, NotFound
from crm.platform.listing import MAX_ID
from crm.tenants.activities.tables import ActivityAttachment

KINDS = ("voice", "audio")
# Telegram lets bots download files of up to 20 MB, the only source of attachments so far;
# the bytes live in a bytea column, read whole when served.
MAX_BYTES = 20 * 1024 * 1024
MAX_PER_ACTIVITY = 5
MAX_DURATION_SECONDS = 86_400
DEFAULT_MIME_TYPE = "application/octet-stream"
# type/subtype as RFC 6838 allows them (no parameters): what we send back as Content-Type.
MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")

# What the API shows of an attachment (never the bytes: those have their own route).
META_COLUMNS = (
    ActivityAttachment.id,
    ActivityAttachment.activity_id,
    ActivityAttachment.kind,
    ActivityAttachment.mime_type,
    ActivityAttachment.duration_seconds,
    ActivityAttachment.size_bytes,
    ActivityAttachment.created_at,
)


class NewAttachment(msgspec.Struct, kw_only=True, frozen=True):
    """A file to keep with a new activity."""

    kind: str
    mime_type: str
    content: bytes
    duration_seconds: int | None = None


def clean_mime_type(value: str | None, fallback: str = DEFAULT_MIME_TYPE) -> str:
    """``value`` lower-cased when it is a plain ``type/subtype``, else ``fallback`` (what a
    sender claims is not trusted to reach a Content-Type header)."""
    cleaned = (value or "").strip().lower()
    return cleaned if MIME_TYPE.fullmatch(cleaned) else fallback


def attachment_errors(attachments: Sequence[NewAttachment]) -> list[FieldError]:
    """Every problem with ``attachments`` (fields ``attachments.N.*``)."""
    errors: list[FieldError] = []
    if len(attachments) > MAX_PER_ACTIVITY:
        errors.append(FieldError("attachments", f"at most {MAX_PER_ACTIVITY} files"))
    for index, item in enumerate(attachments):
        where = f"attachments.{index}"
        if item.kind not in KINDS:
            errors.append(FieldError(f"{where}.kind", f"must be one of {', '.join(KINDS)}"))
        if not MIME_TYPE.fullmatch(item.mime_type):
            errors.append(FieldError(f"{where}.mime_type", "must be a type/subtype such as audio/ogg"))
        if not 0 < len(item.content) <= MAX_BYTES:
            errors.append(FieldError(f"{where}.content", f"must be 1 byte to {MAX_BYTES // (1024 * 1024)} MB"))
        if item.duration_seconds is not None and not 0 <= item.duration_seconds <= MAX_DURATION_SECONDS:
            errors.append(FieldError(f"{where}.duration_seconds", f"must be 0 to {MAX_DURATION_SECONDS}"))
    return errors


async def insert_attachments(
    activity_id: int, author_id: int, attachments: Sequence[NewAttachment]
) -> list[dict[str, Any]]:
    """Store validated ``attachments`` of ``activity_id``; their metadata, in order."""
    if not attachments:
        return []
    rows = [
        ActivityAttachment(
            activity_id=activity_id,
            kind=item.kind,
            mime_type=item.mime_type,
            duration_seconds=item.duration_seconds,
            size_bytes=len(item.content),
            content=item.content,
            author_id=author_id,
        )
        for item in attachments
    ]
    await ActivityAttachment.insert(*rows)
    return (await attachments_of(activity_id)).get(activity_id, [])


async def attachments_of(*activity_ids: int) -> dict[int, list[dict[str, Any]]]:
    """The attachments' metadata of each of ``activity_ids`` (only those that have any)."""
    if not activity_ids:
        return {}
    rows = (
        await ActivityAttachment.select(*META_COLUMNS)
        .where(ActivityAttachment.activity_id.is_in(list(activity_ids)))
        .order_by(ActivityAttachment.id)
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row.pop("activity_id"), []).append(row)
    return found


async def with_attachments(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Activity rows with their ``attachments`` metadata (one query for the lot)."""
    found = await attachments_of(*(row["id"] for row in rows))
    return [{**row, "attachments": found.get(row["id"], [])} for row in rows]


async def load_attachment(activity_id: int, attachment_id: int) -> dict[str, Any]:
    """An attachment of ``activity_id`` with its bytes; the caller has already found the
    activity through its own rights."""
    if not 1 <= attachment_id <= MAX_ID:
        raise NotFound(f"There is no attachment {attachment_id}.")
    row: dict[str, Any] | None = (
        await ActivityAttachment.select(ActivityAttachment.mime_type, ActivityAttachment.content)
        .where(ActivityAttachment.id == attachment_id, ActivityAttachment.activity_id == activity_id)
        .first()
    )
    if row is None:
        raise NotFound(f"There is no attachment {attachment_id}.")
    return row
