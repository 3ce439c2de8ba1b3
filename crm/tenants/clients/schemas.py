"""What the API takes and shows of clients: companies and people.

Request bodies keep loose types (``str`` rather than literals) on purpose: the service
validates every field itself, so one answer names every bad field at once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

KINDS = ("company", "person")
STATUSES = ("lead", "prospect", "client", "former")


class Messenger(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: str  # telegram | whatsapp | viber | …
    handle: str


class Address(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: str  # office | delivery | legal | home | …
    text: str


class MessengerRead(msgspec.Struct, kw_only=True):
    kind: str
    handle: str


class AddressRead(msgspec.Struct, kw_only=True):
    kind: str
    text: str


class ClientCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new client. ``responsible_id`` defaults to the caller; naming another user needs
    the ``clients.assign`` right over them."""

    kind: str  # company | person
    name: str
    phones: list[str] = msgspec.field(default_factory=list)
    emails: list[str] = msgspec.field(default_factory=list)
    messengers: list[Messenger] = msgspec.field(default_factory=list)
    addresses: list[Address] = msgspec.field(default_factory=list)
    tax_id: str | None = None
    source: str = "manual"
    status: str = "lead"
    responsible_id: int | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    custom: dict[str, Any] = msgspec.field(default_factory=dict)
    birthday: date | None = None


class ClientUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are. List fields replace the whole list;
    ``custom`` is merged key by key (``null`` removes a value)."""

    kind: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    phones: list[str] | msgspec.UnsetType = msgspec.UNSET
    emails: list[str] | msgspec.UnsetType = msgspec.UNSET
    messengers: list[Messenger] | msgspec.UnsetType = msgspec.UNSET
    addresses: list[Address] | msgspec.UnsetType = msgspec.UNSET
    tax_id: str | msgspec.UnsetType | None = msgspec.UNSET
    source: str | msgspec.UnsetType = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET
    responsible_id: int | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    custom: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    birthday: date | msgspec.UnsetType | None = msgspec.UNSET


class RelatedClient(msgspec.Struct, kw_only=True):
    """A company a person works at, or a person at a company."""

    id: int
    name: str
    position: str


class ClientRead(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    name: str
    phones: list[str]
    emails: list[str]
    # Read types tolerate keys they do not know (rows written by imports, future fields).
    messengers: list[MessengerRead]
    addresses: list[AddressRead]
    tax_id: str | None
    source: str
    status: str
    responsible_id: int | None
    author_id: int | None
    tags: list[str]
    custom: dict[str, Any]
    birthday: date | None
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # For a person: the companies they are at; for a company: its people.
    companies: list[RelatedClient] = msgspec.field(default_factory=list)
    people: list[RelatedClient] = msgspec.field(default_factory=list)


class ClientPage(msgspec.Struct, kw_only=True):
    items: list[ClientRead]
    next_cursor: str | None


class CompanyLink(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /clients/{person_id}/companies``: the person works at ``company_id``."""

    company_id: int
    position: str = ""


class MergeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /clients/{id}/merge``: fold ``other_id`` into this client and delete it."""

    other_id: int
