"""Reading the CSV files people actually have: Excel exports in UTF-8 or Windows-1251,
comma, semicolon or tab separated, with Russian or English column names."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 500_000

# Column header (lower-cased, spaces and punctuation folded) → client field.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "название", "наименование", "имя", "фио", "клиент", "client", "компания", "company", "fullname"),
    "kind": ("kind", "type", "тип", "видклиента"),
    "phones": ("phone", "phones", "телефон", "телефоны", "тел", "mobile", "мобильный", "мобильныйтелефон"),
    "emails": ("email", "emails", "mail", "почта", "электроннаяпочта", "элпочта"),
    "tax_id": ("taxid", "inn", "инн"),
    "status": ("status", "статус"),
    "source": ("source", "источник"),
    "tags": ("tags", "tag", "теги", "метки"),
    "responsible": ("responsible", "ответственный", "owner", "manager", "менеджер"),
    "birthday": ("birthday", "датарождения", "деньрождения"),
    "address": ("address", "адрес"),
}
_FIELD_BY_HEADER = {synonym: field for field, synonyms in _SYNONYMS.items() for synonym in synonyms}
CLIENT_FIELDS = tuple(_SYNONYMS)


class UnreadableFile(ValueError):
    """Not a CSV file we can read; the message says why."""


def fold(header: str) -> str:
    return re.sub(r"[\s\-_.,:;()\"'№#]+", "", header.strip().lower()).replace("ё", "е")


def decode(content: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1251 — what Russian Excel writes."""
    if len(content) > MAX_BYTES:
        raise UnreadableFile(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1251")


def read_rows(content: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows (blank rows dropped)."""
    text = decode(content)
    if not text.strip():
        raise UnreadableFile("the file is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [cell.strip() for cell in next(reader)]
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise UnreadableFile(f"not a readable CSV file: {error}") from None
    if len(rows) > MAX_ROWS:
        raise UnreadableFile(f"the file has more than {MAX_ROWS} rows")
    return header, rows


def detect_mapping(header: Iterable[str], custom_fields: dict[str, dict[str, str]]) -> dict[str, str]:
    """Column → field for the columns we recognise: client fields by their Russian or
    English names, custom fields by key or either language's name (as ``custom.<key>``)."""
    custom_by_header: dict[str, str] = {}
    for key, names in custom_fields.items():
        for label in (key, *names.values()):
            custom_by_header.setdefault(fold(label), f"custom.{key}")
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in header:
        field = _FIELD_BY_HEADER.get(fold(column)) or custom_by_header.get(fold(column))
        # A second "phone" column adds phones; a second "name" column is ignored.
        if field and (field not in taken or field in ("phones", "emails", "tags")):
            mapping[column] = field
            taken.add(field)
    return mapping


def split_values(cell: str) -> list[str]:
    """Several phones, e-mails or tags in one cell: separated by , ; / or line breaks."""
    return [part.strip() for part in re.split(r"[,;/\n]+", cell) if part.strip()]


_COMPANY_FORMS = re.compile(r"^(ооо|оао|зао|пао|ао|ип|нко|ано|llc|ltd|inc|gmbh|ag|plc)\b|\b(llc|ltd|inc|gmbh|plc)\.?$")
_KINDS = {
    "company": "company",
    "компания": "company",
    "организация": "company",
    "юрлицо": "company",
    "person": "person",
    "контакт": "person",
    "человек": "person",
    "физлицо": "person",
}
_STATUSES = {
    "lead": "lead",
    "лид": "lead",
    "prospect": "prospect",
    "потенциальный": "prospect",
    "client": "client",
    "клиент": "client",
    "former": "former",
    "бывший": "former",
}


def kind_of(value: str, name: str) -> str | None:
    """The client kind a cell names; with no cell, a company when the name has a legal form."""
    if value.strip():
        return _KINDS.get(fold(value))
    return "company" if _COMPANY_FORMS.search(name.strip().lower()) else "person"


def status_of(value: str) -> str | None:
    return _STATUSES.get(fold(value)) if value.strip() else "lead"
