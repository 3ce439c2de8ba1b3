"""Turning one CSV row into a client's fields, or into the reasons it cannot be one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.platform.errors import FieldError
from crm.tenants.clients._input import check_kind_fields
from crm.tenants.clients.contacts import clean_emails, clean_phones
from crm.tenants.configuration.custom_fields import FieldDefinition
from crm.tenants.imports.csvfile import kind_of, split_values, status_of

MAX_NAME = 300

# The client columns an import writes, on create and on update alike.
IMPORTED_FIELDS = (
    "kind",
    "name",
    "phones",
    "emails",
    "tax_id",
    "status",
    "source",
    "tags",
    "addresses",
    "birthday",
    "custom",
    "responsible_id",
)


@dataclass(frozen=True)
class RowContext:
    """What every row of one import is checked against (loaded once per run)."""

    region: str
    importer_id: int
    custom_fields: dict[str, FieldDefinition]
    # Lower-cased e-mail → id of the users the importer may make responsible.
    assignable: dict[str, int]


@dataclass
class ClientRow:
    line: int  # the file's line number, the header being line 1
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    # The mapping targets (``phones``, ``address``, ``custom.<key>``, …) the row has a non-empty
    # cell for; the rest of ``values`` are defaults for a new client, which an update must not apply.
    given: frozenset[str] = frozenset()


def parse_row(line: int, cells: list[str], columns: list[tuple[int, str]], context: RowContext) -> ClientRow:
    """``columns`` are (cell index, field) pairs from the job's mapping."""
    row = ClientRow(line)
    raw: dict[str, list[str]] = {}
    for index, target in columns:
        cell = cells[index].strip() if index < len(cells) else ""
        if cell:
            raw.setdefault(target, []).append(cell)
    name = " ".join(raw.get("name", [])).strip()
    if not name or len(name) > MAX_NAME:
        row.errors.append(FieldError("name", f"must be 1 to {MAX_NAME} characters"))
    kind = kind_of(" ".join(raw.get("kind", [])), name)
    status = status_of(" ".join(raw.get("status", [])))
    for problem, value in (("kind", kind), ("status", status)):
        if value is None:
            row.errors.append(FieldError(problem, "is not a known value"))
    # The clients' rule; a bad value is named by itself (``quote``): a row's cells have no index.
    phones = clean_phones(_parts(raw.get("phones", [])), context.region, row.errors, quote=True)
    emails = clean_emails(_parts(raw.get("emails", [])), row.errors, quote=True)
    tax_id = "".join(ch for ch in " ".join(raw.get("tax_id", [])) if ch.isdigit()) or None
    if tax_id is not None and not 5 <= len(tax_id) <= 20:
        row.errors.append(FieldError("tax_id", "must have 5 to 20 digits"))
    tags = sorted({tag.lower()[:50] for tag in _parts(raw.get("tags", []))})
    responsible_id = context.importer_id
    if raw.get("responsible"):
        found = context.assignable.get(raw["responsible"][0].lower())
        if found is None:
            row.errors.append(FieldError("responsible", "is not a user you may make responsible"))
        else:
            responsible_id = found
    birthday = _date(" ".join(raw.get("birthday", [])), row)
    if kind is not None and birthday is not None:
        check_kind_fields(kind, datetime.fromisoformat(birthday).date(), row.errors)
    custom: dict[str, Any] = {}
    for target, cells_of in raw.items():
        if target.startswith("custom."):
            key = target.removeprefix("custom.")
            definition = context.custom_fields[key]
            try:
                custom[key] = definition.canonical(_typed(definition, cells_of[0]))
            except ValueError as problem:
                row.errors.append(FieldError(target, str(problem)))
    row.values = {
        "kind": kind,
        "name": name,
        "phones": phones,
        "emails": emails,
        "tax_id": tax_id,
        "status": status,
        "source": (" ".join(raw.get("source", [])) or "import")[:32],
        "tags": tags[:30],
        "addresses": [{"kind": "main", "text": text} for text in raw.get("address", [])],
        "birthday": birthday,
        "custom": custom,
        "responsible_id": responsible_id,
    }
    row.given = frozenset(raw)
    return row


def _parts(cells: list[str]) -> list[str]:
    """Every value in ``cells``; one cell may hold several (``split_values``)."""
    return [part for cell in cells for part in split_values(cell)]


def _date(text: str, row: ClientRow) -> str | None:
    text = text.strip()
    if not text:
        return None
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    row.errors.append(FieldError("birthday", "must be a date like 31.12.1990 or 1990-12-31"))
    return None


def _typed(definition: FieldDefinition, cell: str) -> Any:
    """A cell's text as the JSON value a custom field of that type takes."""
    if definition.type == "number":
        try:
            return float(cell.replace(" ", "").replace(",", "."))
        except ValueError:
            return cell
    if definition.type == "boolean":
        return {
            "да": True,
            "yes": True,
            "true": True,
            "1": True,
            "нет": False,
            "no": False,
            "false": False,
            "0": False,
        }.get(cell.strip().lower(), cell)
    if definition.type == "multi_choice":
        return split_values(cell)
    if definition.type == "date":
        try:
            return datetime.strptime(cell.strip(), "%d.%m.%Y").date().isoformat()
        except ValueError:
            return cell
    return cell
