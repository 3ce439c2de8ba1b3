"""What the API takes and shows of web forms, and what a website visitor submits."""

from __future__ import annotations

from datetime import datetime

import msgspec


class WebFormRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    public_key: str
    responsible_id: int | None
    allowed_origins: list[str]
    is_active: bool
    created_at: datetime
    author_id: int | None
    # Where the form posts: {CRM_PUBLIC_URL}/api/v1/forms/{public_key}.
    action_url: str


class WebFormList(msgspec.Struct, kw_only=True):
    items: list[WebFormRead]


class WebFormCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new form. ``responsible_id``: the user its leads go to (left out: unassigned).
    ``allowed_origins``: ``https://host[:port]`` of the sites that may post it from a
    browser script; empty: any site."""

    name: str
    responsible_id: int | None = None
    allowed_origins: list[str] = msgspec.field(default_factory=list)


class WebFormUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; ``responsible_id: null`` leaves new leads
    unassigned; ``is_active: true`` brings a deactivated form back with the key it had."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    responsible_id: int | msgspec.UnsetType | None = msgspec.UNSET
    allowed_origins: list[str] | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class Submission(msgspec.Struct, kw_only=True):
    """A visitor's answers, as posted (the edge has read them from the body already)."""

    name: str = ""
    phone: str = ""
    email: str = ""
    company: str = ""
    comment: str = ""
