"""Mailing DTOs (msgspec): segments, templates, mailings and their progress."""

from __future__ import annotations

from datetime import datetime

import msgspec

CLIENT_STATUSES = ("lead", "prospect", "client", "former")
# draft → scheduled → sending → sent; cancelled from any of the first three; failed when it cannot start.
MAILING_STATES = ("draft", "scheduled", "sending", "sent", "cancelled", "failed")


class SegmentFilters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Clients that match every filter given (a list matches any of its values)."""

    statuses: list[str] = []
    kinds: list[str] = []
    tags: list[str] = []  # has any of these tags
    custom: dict[str, str | int | float | bool] = {}  # custom field key → value (equality)
    responsible_ids: list[int] = []
    last_contact_before: datetime | None = None
    last_contact_after: datetime | None = None
    never_contacted: bool = False
    deal_stage_ids: list[int] = []  # has a deal in one of these stages


class SegmentWrite(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    filters: SegmentFilters = msgspec.field(default_factory=SegmentFilters)


class SegmentRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    filters: SegmentFilters
    author_id: int | None
    created_at: datetime
    updated_at: datetime


class SegmentPage(msgspec.Struct, kw_only=True):
    items: list[SegmentRead]
    next_cursor: str | None


class SegmentCount(msgspec.Struct, kw_only=True):
    clients: int  # matching clients with an e-mail address you may read
    recipients: int  # of them, addresses not unsubscribed or bounced


class TemplateWrite(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    subject: str
    text: str
    html: str | None = None


class TemplateRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    subject: str
    text: str
    html: str | None
    author_id: int | None
    created_at: datetime
    updated_at: datetime


class TemplatePage(msgspec.Struct, kw_only=True):
    items: list[TemplateRead]
    next_cursor: str | None


class PreviewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    client_id: int


class Preview(msgspec.Struct, kw_only=True):
    to: str
    subject: str
    text: str
    html: str | None


class TestSent(msgspec.Struct, kw_only=True):
    to: str


class MailingCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    segment_id: int
    template_id: int


class ScheduleRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``at`` None: now."""

    at: datetime | None = None


class Progress(msgspec.Struct, kw_only=True):
    total: int
    sent: int
    failed: int
    pending: int  # not yet sent (waiting or being sent)
    cancelled: int


class MailingRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    segment_id: int
    template_id: int
    state: str
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    author_id: int | None
    created_at: datetime
    progress: Progress


class MailingPage(msgspec.Struct, kw_only=True):
    items: list[MailingRead]
    next_cursor: str | None
