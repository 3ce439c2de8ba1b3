"""Building the client card: the client and everything around it, each part filtered by
the caller's rights, in a handful of indexed queries inside one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec

from crm.platform.auth import Principal
from crm.platform.editions import shipped_editions
from crm.platform.sql import fetch_sql
from crm.platform.tenancy import read_in_tenant
from crm.tenants.activities.tables import Activity
from crm.tenants.card.schemas import (
    CardActivity,
    CardDeal,
    CardTask,
    ClientCard,
    Contact,
    Figures,
    Money,
    StageBrief,
    brief,
)
from crm.tenants.clients._read import clients_in_scope, load_client
from crm.tenants.deals.tables import Deal
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import NOTHING, records_in_scope

TIMELINE_LENGTH = 20
MAX_LISTED = 50

_CONTACTS = """
SELECT clients.id, clients.kind, clients.name, client_relations.position, clients.phones, clients.emails
FROM client_relations JOIN clients ON clients.id = client_relations.{other_side}
WHERE client_relations.{this_side} = {{}} AND ({{}})
ORDER BY clients.name, clients.id
LIMIT {{}}
"""
# A company lists its people; a person, the companies they are at.
_PEOPLE = _CONTACTS.format(other_side="person_id", this_side="company_id")
_COMPANIES = _CONTACTS.format(other_side="company_id", this_side="person_id")
_DEALS = """
SELECT deals.id, deals.title, deals.amount::text AS amount, deals.currency, deals.probability, deals.status,
       deals.pipeline_id, deals.expected_close_on, deals.responsible_id, deals.stage_changed_at,
       pipeline_stages.id AS stage_id, pipeline_stages.key AS stage_key, pipeline_stages.names::text AS stage_names,
       pipeline_stages.kind AS stage_kind
FROM deals JOIN pipeline_stages ON pipeline_stages.id = deals.stage_id
WHERE deals.client_id = {} AND deals.status = 'open' AND ({})
ORDER BY deals.stage_changed_at DESC, deals.id DESC
LIMIT {}
"""
_DEAL_FIGURES = """
SELECT deals.status, deals.currency, count(*) AS deals, sum(deals.amount)::text AS amount
FROM deals WHERE deals.client_id = {} AND ({})
GROUP BY deals.status, deals.currency
"""
_TIMELINE = """
SELECT activities.id, activities.kind, activities.status, activities.occurred_at, activities.subject,
       activities.comment, activities.direction, activities.phone, activities.duration_seconds, activities.outcome,
       activities.deal_id, activities.next_task_id,
       users.id AS author_id, users.name AS author_name, users.email AS author_email
FROM activities LEFT JOIN users ON users.id = activities.author_id
WHERE activities.client_id = {} AND ({})
ORDER BY activities.occurred_at DESC, activities.id DESC
LIMIT {}
"""
_TASKS = """
SELECT tasks.id, tasks.title, tasks.task_type, tasks.due_at, tasks.priority, tasks.deal_id,
       users.id AS assignee_id, users.name AS assignee_name, users.email AS assignee_email
FROM tasks JOIN users ON users.id = tasks.assignee_id
WHERE tasks.client_id = {} AND tasks.status = 'open' AND ({})
ORDER BY tasks.due_at, tasks.id
LIMIT {}
"""
_RESPONSIBLE = (
    "SELECT id AS responsible_id, name AS responsible_name, email AS responsible_email FROM users WHERE id = {}"
)


async def client_card(principal: Principal, client_id: int) -> ClientCard:
    """The card of a client the caller may read (404 otherwise)."""

    async def build() -> ClientCard:
        client = await load_client(principal, client_id)
        readable_clients = (await clients_in_scope(principal, "read")).querystring
        has_deals = shipped_editions()[principal.tenant.edition].has_module("deals")
        deals_visible = (
            await records_in_scope(principal, "deals", "read", Deal.responsible_id, Deal.author_id)
            if has_deals
            else NOTHING
        ).querystring
        activities_visible = (await records_in_scope(principal, "activities", "read", Activity.author_id)).querystring
        tasks_visible = (
            await records_in_scope(principal, "tasks", "read", Task.assignee_id, Task.author_id)
        ).querystring

        contacts_sql = _PEOPLE if client.kind == "company" else _COMPANIES
        contacts = await fetch_sql(contacts_sql, client_id, readable_clients, MAX_LISTED)
        deals = await fetch_sql(_DEALS, client_id, deals_visible, MAX_LISTED)
        figures = await fetch_sql(_DEAL_FIGURES, client_id, deals_visible)
        timeline = await fetch_sql(_TIMELINE, client_id, activities_visible, TIMELINE_LENGTH)
        tasks = await fetch_sql(_TASKS, client_id, tasks_visible, MAX_LISTED)
        responsible = await fetch_sql(_RESPONSIBLE, client.responsible_id) if client.responsible_id else []

        now = datetime.now(UTC)
        return ClientCard(
            client=client,
            responsible=brief(responsible[0], "responsible") if responsible else None,
            contacts=[msgspec.convert(dict(row), Contact) for row in contacts],
            deals=[_deal(row) for row in deals],
            timeline=[_activity(row) for row in timeline],
            tasks=[_task(row, now) for row in tasks],
            figures=_figures(figures, client.first_contact_at, client.last_contact_at, now),
        )

    return await read_in_tenant(principal.tenant, build)


def _deal(row: Any) -> CardDeal:
    names = json.loads(row["stage_names"])
    stage = StageBrief(id=row["stage_id"], key=row["stage_key"], names=names, kind=row["stage_kind"])
    fields = {key: row[key] for key in row.keys() if not key.startswith("stage_") or key == "stage_changed_at"}
    return CardDeal(**fields, stage=stage)


def _activity(row: Any) -> CardActivity:
    fields = {key: row[key] for key in row.keys() if not key.startswith("author_")}
    return CardActivity(**fields, author=brief(row, "author"))


def _task(row: Any, now: datetime) -> CardTask:
    assignee = brief(row, "assignee")
    assert assignee is not None  # tasks.assignee_id is NOT NULL, joined to users
    return CardTask(
        id=row["id"],
        title=row["title"],
        task_type=row["task_type"],
        due_at=row["due_at"],
        priority=row["priority"],
        overdue=row["due_at"] < now,
        deal_id=row["deal_id"],
        assignee=assignee,
    )


def _figures(rows: list[Any], first: datetime | None, last: datetime | None, now: datetime) -> Figures:
    counts: dict[str, int] = {"open": 0, "won": 0, "lost": 0}
    revenue: list[Money] = []
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + row["deals"]
        if row["status"] == "won":
            revenue.append(Money(currency=row["currency"], amount=row["amount"]))
    return Figures(
        revenue_won=sorted(revenue, key=lambda money: money.currency),
        deals_open=counts["open"],
        deals_won=counts["won"],
        deals_lost=counts["lost"],
        first_contact_at=first,
        last_contact_at=last,
        days_since_last_contact=None if last is None else (now - last).days,
    )
