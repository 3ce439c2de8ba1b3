"""What the import API (and the console's import wizard) shows: a file's preview and a job's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class ImportPreview(msgspec.Struct, kw_only=True):
    columns: list[str]
    mapping: dict[str, str]
    fields: list[str]
    rows: list[list[str]]
    total_rows: int


class ImportRead(msgspec.Struct, kw_only=True):
    id: int
    status: str
    filename: str
    mapping: dict[str, Any]
    on_duplicate: str
    total_rows: int
    processed_rows: int
    created_rows: int
    updated_rows: int
    unchanged_rows: int
    skipped_rows: int
    error_rows: int
    percent: int
    errors: list[dict[str, Any]]
    author_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportPage(msgspec.Struct, kw_only=True):
    items: list[ImportRead]
    next_cursor: str | None
