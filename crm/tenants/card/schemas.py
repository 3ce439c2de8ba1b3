"""What the client card shows (the console's card page and the bot's card message)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from crm.tenants.clients.schemas import ClientRead


class UserBrief(msgspec.Struct, kw_only=True):
    id: int
    name: str
    email: str


class Contact(msgspec.Struct, kw_only=True):
    """A person at this company, or a company this person is at — with ways to reach them."""

    id: int
    kind: str
    name: str
    position: str
    phones: list[str]
    emails: list[str]


class StageBrief(msgspec.Struct, kw_only=True):
    id: int
    key: str
    names: dict[str, str]
    kind: str


class CardDeal(msgspec.Struct, kw_only=True):
    id: int
    title: str
    amount: str
    currency: str
    probability: int
    status: str
    pipeline_id: int
    stage: StageBrief
    expected_close_on: date | None
    responsible_id: int | None
    stage_changed_at: datetime


class CardActivity(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    status: str
    occurred_at: datetime
    subject: str
    comment: str
    direction: str | None
    phone: str | None
    duration_seconds: int | None
    outcome: str | None
    deal_id: int | None
    next_task_id: int | None
    author: UserBrief | None


class CardTask(msgspec.Struct, kw_only=True):
    id: int
    title: str
    task_type: str | None
    due_at: datetime
    priority: str
    overdue: bool
    deal_id: int | None
    assignee: UserBrief


class Money(msgspec.Struct, kw_only=True):
    currency: str
    amount: str


class Figures(msgspec.Struct, kw_only=True):
    revenue_won: list[Money]
    deals_open: int
    deals_won: int
    deals_lost: int
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    days_since_last_contact: int | None


class ClientCard(msgspec.Struct, kw_only=True):
    client: ClientRead
    responsible: UserBrief | None
    contacts: list[Contact]
    # Open deals the caller may see, with their stage.
    deals: list[CardDeal]
    # The latest activities, newest first.
    timeline: list[CardActivity]
    # Open tasks on this client the caller may see, soonest first.
    tasks: list[CardTask]
    figures: Figures
