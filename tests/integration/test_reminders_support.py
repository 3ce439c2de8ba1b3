"""Helpers of the reminders and notifications tests (no tests here): draining due timers
"as of" a moved clock, and reading what the timers table, the reminder queue and the
notifications hold."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import time_machine

from crm.platform.services import Services
from crm.platform.timers import run_due
from tests.conftest import SignedUpTenant
from tests.integration.helpers import tenant_of


async def drain(services: Services, now: datetime) -> None:
    """Run every timer due by ``now`` with Python's clock at ``now`` too (the handlers read it)."""
    with time_machine.travel(now, tick=True):
        while await run_due(services.db.pool, limit=50, now=now):
            pass


async def timers(services: Services, company: SignedUpTenant, kind: str) -> list[dict[str, Any]]:
    """The company's timers of ``kind``, oldest first."""
    tenant = await tenant_of(company)
    rows = await services.db.pool.fetch(
        "SELECT id, due_at, state, payload::text AS payload FROM platform.timers"
        " WHERE tenant_id = $1 AND kind = $2 ORDER BY id",
        tenant.id,
        kind,
    )
    return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]


async def queued(services: Services, company: SignedUpTenant) -> list[dict[str, Any]]:
    """The company's task reminders waiting in its queue, by moment."""
    tenant = await tenant_of(company)
    rows = await services.db.pool.fetch(
        f'SELECT task_id, user_id, offset_minutes, version, remind_at FROM "{tenant.schema}".reminders_queue'
        " ORDER BY remind_at, task_id"
    )
    return [dict(row) for row in rows]


async def notifications(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await http.get("/api/v1/notifications", headers=auth, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def titles(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[str]:
    return [item["title"] for item in (await notifications(http, auth, **params))["items"]]


async def make_task(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/tasks", json=body, headers=auth)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task
