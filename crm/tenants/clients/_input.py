"""Cleaning what people type about a client into the stored form, naming every bad field.

Phones and e-mails follow the rule in :mod:`.contacts`; tags become trimmed lower-case
keys; duplicates inside one list are dropped, order kept.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import msgspec

from crm.platform.errors import FieldError
from crm.tenants.clients.contacts import clean_emails, clean_phones
from crm.tenants.clients.schemas import KINDS, STATUSES, Address, ClientCreate, ClientUpdate, Messenger

MAX_NAME = 300
MAX_CONTACTS = 20  # messengers, addresses
MAX_TAGS = 30
MAX_TAG = 50
KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TAX_ID = re.compile(r"^\d{5,20}$")  # Russian INN: 10 digits (companies) or 12 (people)


def clean_fields(data: ClientCreate | ClientUpdate, region: str | None, errors: list[FieldError]) -> dict[str, Any]:
    """The stored values of the fields ``data`` sets (UNSET fields are left out)."""
    values: dict[str, Any] = {}
    given = {field: getattr(data, field) for field in data.__struct_fields__}
    given = {field: value for field, value in given.items() if value is not msgspec.UNSET}
    if "kind" in given:
        if given["kind"] not in KINDS:
            errors.append(FieldError("kind", "must be company or person"))
        values["kind"] = given["kind"]
    if "name" in given:
        name = " ".join(given["name"].split())
        if not 1 <= len(name) <= MAX_NAME:
            errors.append(FieldError("name", f"must be 1 to {MAX_NAME} characters"))
        values["name"] = name
    if "phones" in given:
        values["phones"] = clean_phones(given["phones"], region, errors)
    if "emails" in given:
        values["emails"] = clean_emails(given["emails"], errors)
    if "messengers" in given:
        values["messengers"] = _contacts("messengers", given["messengers"], errors)
    if "addresses" in given:
        values["addresses"] = _contacts("addresses", given["addresses"], errors)
    if "tax_id" in given:
        values["tax_id"] = _tax_id(given["tax_id"], errors)
    if "source" in given:
        source = given["source"].strip().lower()
        if not KEY.fullmatch(source):
            errors.append(FieldError("source", "must be a short key: latin letters, digits and _ (web_form, call, …)"))
        values["source"] = source
    if "status" in given:
        if given["status"] not in STATUSES:
            errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
        values["status"] = given["status"]
    if "responsible_id" in given and given["responsible_id"] is not None:
        values["responsible_id"] = given["responsible_id"]
    if "tags" in given:
        values["tags"] = _tags(given["tags"], errors)
    if "birthday" in given:
        birthday: date | None = given["birthday"]
        if birthday is not None and not date(1900, 1, 1) <= birthday <= date.today():
            errors.append(FieldError("birthday", "must be a past date after 1900"))
        values["birthday"] = birthday
    return values


def check_kind_fields(kind: str, birthday: date | None, errors: list[FieldError]) -> None:
    if kind == "company" and birthday is not None:
        errors.append(FieldError("birthday", "only people have a birthday"))


def _contacts(field: str, raw: list[Messenger] | list[Address], errors: list[FieldError]) -> list[dict[str, str]]:
    """Messengers ({kind, handle}) or addresses ({kind, text}), trimmed, without repeats."""
    items: list[dict[str, str]] = []
    limit = 200 if field == "messengers" else 1000
    if len(raw) > MAX_CONTACTS:
        errors.append(FieldError(field, f"at most {MAX_CONTACTS} entries"))
    for index, item in enumerate(raw):
        cleaned = {name: value.strip() for name, value in msgspec.structs.asdict(item).items()}
        cleaned["kind"] = cleaned["kind"].lower()
        if not KEY.fullmatch(cleaned["kind"]):
            errors.append(FieldError(f"{field}.{index}.kind", "must be a short key: latin letters, digits and _"))
        value_field = "handle" if field == "messengers" else "text"
        if not 1 <= len(cleaned[value_field]) <= limit:
            errors.append(FieldError(f"{field}.{index}.{value_field}", f"must be 1 to {limit} characters"))
        if cleaned not in items:
            items.append(cleaned)
    return items


def _tax_id(raw: str | None, errors: list[FieldError]) -> str | None:
    if raw is None:
        return None
    digits = "".join(raw.split())
    if not digits:
        return None
    if not TAX_ID.fullmatch(digits):
        errors.append(FieldError("tax_id", "must be 5 to 20 digits (a Russian INN has 10 or 12)"))
    return digits


def _tags(raw: list[str], errors: list[FieldError]) -> list[str]:
    tags: list[str] = []
    for index, text in enumerate(raw):
        tag = " ".join(text.split()).lower()
        if not 1 <= len(tag) <= MAX_TAG:
            errors.append(FieldError(f"tags.{index}", f"must be 1 to {MAX_TAG} characters"))
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors.append(FieldError("tags", f"at most {MAX_TAGS} tags"))
    return tags
