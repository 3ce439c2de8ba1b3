"""A worker killed with SIGKILL in the middle of a 5,000-recipient mailing: a new worker
finishes it, and every recipient got exactly one letter (counted at the SMTP server)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import TenantFactory
from tests.fakes.smtp import FakeSmtp
from tests.integration.helpers import tenant_of
from tests.support import ROOT

RECIPIENTS = 5000
LEASE_SECONDS = 3


def _worker(database_url: str, tenant_id: str, mailing_id: int, smtp_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.mailing_worker", database_url, tenant_id, str(mailing_id), smtp_url,
         str(LEASE_SECONDS)],
        cwd=ROOT,
        env={**os.environ, "CRM_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
    )  # fmt: skip


async def test_sigkill_mid_mailing_then_a_new_worker_sends_each_letter_once(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, database_url: str
) -> None:
    company, other = await make_tenant(), await make_tenant()
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        await scope_connection().execute(
            "INSERT INTO clients (kind, name, phones, emails, tags, status)"
            " SELECT 'person', 'Client ' || g, '{}', ARRAY['r' || g || '@example.org'], '{}', 'client'"
            " FROM generate_series(1, $1) g",
            RECIPIENTS,
        )
    auth = company.auth
    assert (
        await http.patch("/api/v1/settings/mail", json={"rate_per_minute": 100000}, headers=auth)
    ).status_code == 200
    segment = await http.post("/api/v1/mailings/segments", json={"name": "all", "filters": {}}, headers=auth)
    template = await http.post(
        "/api/v1/mailings/templates",
        json={"name": "news", "subject": "News for {{ client.name }}", "text": "Hi {{ client.first_name }}"},
        headers=auth,
    )
    mailing = await http.post(
        "/api/v1/mailings",
        json={"name": "crash", "segment_id": segment.json()["id"], "template_id": template.json()["id"]},
        headers=auth,
    )
    mailing_id = mailing.json()["id"]
    # Due tomorrow: the test app's own timer runner leaves it alone; the worker processes run it.
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = await http.post(f"/api/v1/mailings/{mailing_id}/schedule", json={"at": later}, headers=auth)
    assert scheduled.status_code == 200, scheduled.text

    with FakeSmtp() as smtp:
        first = _worker(database_url, tenant.id, mailing_id, smtp.url)
        deadline = time.monotonic() + 120
        while len(smtp.received) < RECIPIENTS // 3:
            assert first.poll() is None, "the first worker ended before it was killed"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = len(smtp.received)
        assert at_kill < RECIPIENTS

        progress = (await http.get(f"/api/v1/mailings/{mailing_id}", headers=auth)).json()["progress"]
        assert progress["total"] == RECIPIENTS and 0 < progress["sent"] < RECIPIENTS

        second = _worker(database_url, tenant.id, mailing_id, smtp.url)
        out, _ = await asyncio.to_thread(second.communicate, timeout=300)
        assert second.returncode == 0 and out.strip() == b"sent"

        counts = smtp.count_by_recipient()
        assert len(counts) == RECIPIENTS, f"{RECIPIENTS - len(counts)} recipients got no letter"
        assert max(counts.values()) == 1, [address for address, count in counts.items() if count > 1][:10]

    done = (await http.get(f"/api/v1/mailings/{mailing_id}", headers=auth)).json()
    assert done["state"] == "sent"
    assert done["progress"] == {"total": RECIPIENTS, "sent": RECIPIENTS, "failed": 0, "pending": 0, "cancelled": 0}
    # The other company sees none of it.
    assert (await http.get(f"/api/v1/mailings/{mailing_id}", headers=other.auth)).status_code == 404
    assert (await http.get("/api/v1/mailings", headers=other.auth)).json() == []
