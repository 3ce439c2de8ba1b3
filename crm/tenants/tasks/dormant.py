"""Dormant clients ("rotation"): clients nobody has contacted for N days, and call tasks
for their responsible managers in one go.

A client is dormant when its last completed activity (``last_contact_at``, kept by the
activities service) is older than N days, or when it was never contacted and was created
more than N days ago. The list and the bulk action only consider clients the caller may
read; tasks for other people's clients need the ``tasks.assign`` right over them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from piccolo.columns.combination import Combinable

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import DEFAULT_LIMIT, Cursor, IdFilter, Limit, ListSpec, Sort, page_of, page_query
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients._listing import not_contacted_since
from crm.tenants.clients.tables import Client
from crm.tenants.tasks.schemas import AwareDatetime
from crm.tenants.tasks.services import MAX_TITLE, aware_utc, task_type_keys
from crm.tenants.tasks.tables import Task
from crm.tenants.users.scopes import may_assign, records_in_scope
from crm.tenants.users.tables import User

MAX_DAYS = 3650
Days = Annotated[int, QueryParameter(ge=1, le=MAX_DAYS, description="Days without a completed activity")]
DEFAULT_DAYS = 30
# One request creates at most this many tasks (one transaction); call again for the rest.
MAX_CALL_TASKS = 1000
DORMANT_LIST = ListSpec(
    sortable={"id": Client.id, "name": Client.name, "created_at": Client.created_at}, default_sort="id"
)
DORMANT_COLUMNS = (
    Client.id,
    Client.name,
    Client.kind,
    Client.status,
    Client.phones,
    Client.responsible_id,
    Client.last_contact_at,
    Client.created_at,
)
CALL_TITLES = {"ru": "Позвонить: {client}", "en": "Call: {client}"}


class DormantClient(msgspec.Struct, kw_only=True):
    id: int
    name: str
    kind: str
    status: str
    phones: list[str]
    responsible_id: int | None
    last_contact_at: datetime | None
    created_at: datetime
    # Whole days since the last completed activity; null when there never was one.
    days_since_last_contact: int | None


class DormantPage(msgspec.Struct, kw_only=True):
    items: list[DormantClient]
    next_cursor: str | None


class DormantCallTasks(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days: int
    due_at: AwareDatetime
    status: str | None = None
    responsible_id: int | None = None
    # `{client}` is replaced by the client's name; default "Call: <name>" in your language.
    title: str | None = None


class DormantCallTasksResult(msgspec.Struct, kw_only=True):
    created: int
    skipped: int
    task_ids: list[int]
    # no_responsible (none or deactivated), open_task (one is already waiting),
    # not_assignable (the responsible user is outside your tasks.assign scope).
    skipped_by_reason: dict[str, int]
    # Dormant clients left for another call (more than MAX_CALL_TASKS were due).
    remaining: int


async def dormant_conditions(
    principal: Principal, days: int, status: str | None, responsible_id: int | None
) -> list[Combinable]:
    """WHERE conditions for the dormant clients ``principal`` may read."""
    threshold = datetime.now(UTC) - timedelta(days=days)
    conditions: list[Combinable] = [
        await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id),
        not_contacted_since(threshold),
    ]
    if status is not None:
        conditions.append(Client.status == status)
    if responsible_id is not None:
        conditions.append(Client.responsible_id == responsible_id)
    return conditions


async def create_dormant_call_tasks(
    principal: Principal, data: DormantCallTasks, *, origin: Origin
) -> DormantCallTasksResult:
    """One call task per dormant client for its responsible user; clients without an
    active responsible user, or with an open task already, are skipped. One transaction,
    one ``task.created`` audit row per task."""
    errors: list[FieldError] = []
    if not 1 <= data.days <= MAX_DAYS:
        errors.append(FieldError("days", f"must be 1 to {MAX_DAYS}"))
    due_at = aware_utc(data.due_at, "due_at", errors)
    template = (data.title or "").strip() or CALL_TITLES.get(principal.locale[:2], CALL_TITLES["en"])
    if len(template) > MAX_TITLE:
        errors.append(FieldError("title", f"must be at most {MAX_TITLE} characters"))
    if errors:
        raise InvalidInput("The request has invalid fields.", errors=errors)
    # Two such requests at once would both see "no open task" and double the work.
    await scope_connection().execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':dormant-calls'))")
    conditions = await dormant_conditions(principal, data.days, data.status, data.responsible_id)
    clients = await Client.select(Client.id, Client.name, Client.responsible_id).where(*conditions).order_by(Client.id)
    with_open_task = await _clients_with_open_tasks([client["id"] for client in clients])
    responsible = {client["responsible_id"] for client in clients if client["responsible_id"] is not None}
    active: set[int] = set()
    if responsible:
        found = await User.select(User.id).where(User.id.is_in(list(responsible)), User.is_active.eq(True))
        active = {row["id"] for row in found}
    assignable = {user_id for user_id in active if await may_assign(principal, "tasks", user_id)}

    skipped: Counter[str] = Counter()
    chosen: list[dict[str, Any]] = []
    for client in clients:
        if client["responsible_id"] not in active:
            skipped["no_responsible"] += 1
        elif client["id"] in with_open_task:
            skipped["open_task"] += 1
        elif client["responsible_id"] not in assignable:
            skipped["not_assignable"] += 1
        else:
            chosen.append(client)
    remaining = max(0, len(chosen) - MAX_CALL_TASKS)
    chosen = chosen[:MAX_CALL_TASKS]
    task_type = "call" if "call" in await task_type_keys() else None
    task_ids: list[int] = []
    actor = origin.user(principal)
    for client in chosen:
        values = {
            "title": template.replace("{client}", client["name"])[:MAX_TITLE],
            "task_type": task_type,
            "assignee_id": client["responsible_id"],
            "author_id": principal.user_id,
            "client_id": client["id"],
            "due_at": due_at,
            "status": "open",
        }
        rows = await Task.insert(Task(**values)).returning(Task.id)
        task_id = int(rows[0]["id"])
        task_ids.append(task_id)
        changes = {
            field: (None, value.isoformat() if isinstance(value, datetime) else value)
            for field, value in values.items()
        }
        await record_audit(actor, "task.created", entity="task", entity_id=task_id, changes=changes)
    return DormantCallTasksResult(
        created=len(task_ids),
        skipped=sum(skipped.values()),
        task_ids=task_ids,
        skipped_by_reason=dict(skipped),
        remaining=remaining,
    )


async def _clients_with_open_tasks(client_ids: list[int]) -> set[int]:
    if not client_ids:
        return set()
    rows = await scope_connection().fetch(
        "SELECT DISTINCT client_id FROM tasks WHERE status = 'open' AND client_id = ANY($1::int[])", client_ids
    )
    return {row["client_id"] for row in rows}


def _shown(row: dict[str, Any], now: datetime) -> DormantClient:
    last = row["last_contact_at"]
    return msgspec.convert(
        {**row, "days_since_last_contact": None if last is None else (now - last).days}, DormantClient
    )


class DormantClientsController(Controller):
    path = "/api/v1/clients/dormant"
    tags = ["clients", "tasks"]

    @get(
        "/",
        opt=permission("clients", "read"),
        operation_id="listDormantClients",
        summary="Clients nobody has contacted for N days",
        description="Clients you may read whose last completed activity is older than `days` "
        "(or never contacted and created before then). Sort by id, name or created_at.",
    )
    async def list_dormant(
        self,
        principal: NamedDependency[Principal],
        days: Days = DEFAULT_DAYS,
        status: FromQuery[str | None] = None,
        responsible_id: IdFilter = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> DormantPage:
        ordering = DORMANT_LIST.ordering(sort)

        async def page() -> list[dict[str, Any]]:
            conditions = await dormant_conditions(principal, days, status, responsible_id)
            query = Client.select(*DORMANT_COLUMNS).where(*conditions)
            rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).run()
            return rows

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        now = datetime.now(UTC)
        return DormantPage(items=[_shown(row, now) for row in rows], next_cursor=after)

    @post(
        "/call-tasks",
        opt=permission("tasks", "create"),
        guards=[requires_module("tasks")],
        status_code=HTTP_200_OK,
        operation_id="createDormantCallTasks",
        summary="A call task for each dormant client's responsible manager",
        description="Skips clients without an active responsible user and clients with an open task. "
        f"At most {MAX_CALL_TASKS} tasks per request (`remaining` tells how many are left).",
    )
    async def call_tasks(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[DormantCallTasks]
    ) -> DormantCallTasksResult:
        async with tenant_scope(principal.tenant):
            return await create_dormant_call_tasks(principal, data, origin=origin_of(request))
