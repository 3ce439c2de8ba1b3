"""What the API takes and shows of leads, and of their conversion.

Request bodies keep loose types (``str`` rather than literals): the services validate
each field themselves, so one answer names every bad field at once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

SOURCES = ("web_form", "call", "import", "manual", "bot")
STATUSES = ("new", "in_progress", "qualified", "disqualified", "converted")
# Set through PATCH; the others have actions of their own (qualify, disqualify, convert).
EDITABLE_STATUSES = ("new", "in_progress")


class LeadRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    company_name: str
    phones: list[str]
    emails: list[str]
    source: str
    status: str
    note: str
    disqualified_reason: str | None
    custom: dict[str, Any]
    responsible_id: int | None
    author_id: int | None
    client_id: int | None
    deal_id: int | None
    converted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class LeadPage(msgspec.Struct, kw_only=True):
    items: list[LeadRead]
    next_cursor: str | None


class LeadCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new lead: a person, maybe of a company. ``responsible_id`` defaults to the caller;
    naming another user needs the ``leads.assign`` right over them."""

    name: str
    company_name: str = ""
    phones: list[str] = msgspec.field(default_factory=list)
    emails: list[str] = msgspec.field(default_factory=list)
    source: str = "manual"
    note: str = ""
    responsible_id: int | None = None
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class LeadUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; lists replace the whole list; ``custom`` is
    merged key by key (``null`` removes a value). ``status``: new or in_progress."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    company_name: str | msgspec.UnsetType = msgspec.UNSET
    phones: list[str] | msgspec.UnsetType = msgspec.UNSET
    emails: list[str] | msgspec.UnsetType = msgspec.UNSET
    source: str | msgspec.UnsetType = msgspec.UNSET
    note: str | msgspec.UnsetType = msgspec.UNSET
    status: str | msgspec.UnsetType = msgspec.UNSET
    responsible_id: int | msgspec.UnsetType = msgspec.UNSET
    custom: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class LeadDisqualify(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: str


class ConversionDeal(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The deal a conversion opens. Left out: the client's name as the title, the first
    pipeline, 0 RUB."""

    title: str | None = None
    pipeline_id: int | None = None
    amount: Decimal = Decimal(0)
    currency: str = "RUB"


class LeadConvert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Turn a lead into a client (or attach it to ``client_id``) and, with ``deal``, a deal.
    ``force`` creates the client even when it looks like a duplicate of another."""

    deal: ConversionDeal | None = None
    client_id: int | None = None
    force: bool = False


class LeadConversion(msgspec.Struct, kw_only=True):
    """The converted lead, its client, the person linked to that client when the lead
    named a company (the company is the client), and the deal (if one was asked for)."""

    lead: LeadRead
    client_id: int
    person_id: int | None
    deal_id: int | None
