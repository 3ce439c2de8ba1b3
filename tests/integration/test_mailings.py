"""Mailings over the API: segments with a live count, templates checked when saved, preview
and test send, scheduled sending over SMTP with an unsubscribe link that needs no login,
progress, cancel, the edition's module and monthly limit — and two companies kept apart."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from crm.platform.mail import install_mail
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.timers import run_due
from crm.settings import Settings, load_settings
from tests.conftest import SignedUpTenant, TenantFactory
from tests.fakes.smtp import FakeSmtp
from tests.integration.helpers import my_id, tenant_of


@pytest.fixture
def smtp(settings: Settings) -> Iterator[FakeSmtp]:
    with FakeSmtp(refuse={"bounce@example.org"}) as server:
        env = {"CRM_DATA_DIR": str(settings.data_dir), "CRM_SECRET_KEY": "k" * 40, "CRM_SMTP_URL": server.url}
        install_mail(replace(settings, mail=replace(settings.mail, smtp=load_settings(env).mail.smtp)))
        try:
            yield server
        finally:
            install_mail(settings)


async def _client(company: SignedUpTenant, name: str, email: str, **values: Any) -> int:
    async with tenant_scope(await tenant_of(company)):
        client_id: int = await scope_connection().fetchval(
            "INSERT INTO clients (kind, name, phones, emails, tags, status, responsible_id, last_contact_at)"
            " VALUES ('person', $1, '{}', ARRAY[$2]::varchar[], $3, $4, $5, $6) RETURNING id",
            name,
            email,
            values.get("tags", []),
            values.get("status", "client"),
            values.get("responsible_id"),
            values.get("last_contact_at"),
        )
    return client_id


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any], auth: dict[str, str]) -> dict[str, Any]:
    response = await http.post(path, json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def _until_finished(
    http: httpx.AsyncClient, services: Services, mailing_id: int, auth: dict[str, str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        await run_due(services.db.pool, limit=10)
        mailing: dict[str, Any] = (await http.get(f"/api/v1/mailings/{mailing_id}", headers=auth)).json()
        if mailing["state"] in ("sent", "cancelled", "failed"):
            return mailing
        assert time.monotonic() < deadline, mailing
        await asyncio.sleep(0.05)


async def test_templates_are_checked_when_saved(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    path = "/api/v1/mailings/templates"
    for field, source, named in (
        ("text", "Hello {{ client.passport }}", "client.passport"),
        ("subject", "{{ secret_key }}", "secret_key"),
        ("text", "{% if false %}{{ company.owner }}{% endif %}", "company.owner"),
        ("text", "{{ client.name.__class__.__mro__ }}", "__class__"),
        ("html", "{{ ''.__class__ }}", "__class__"),
        ("text", "{{ client.name ", "not a valid template"),
    ):
        body = {"name": "t", "subject": "Hi", "text": "Hi", field: source}
        response = await http.post(path, json=body, headers=company.auth)
        assert response.status_code == 422, (source, response.text)
        errors = response.json()["errors"]
        assert errors[0]["field"] == field and named in errors[0]["detail"], errors
    fine = await http.post(
        path,
        json={"name": "ok", "subject": "News for {{ client.first_name }}", "text": "{{ unsubscribe_url }}",
              "html": "<p>{{ client.name }}</p>"},
        headers=company.auth,
    )  # fmt: skip
    assert fine.status_code == 201, fine.text


async def test_a_mailing_end_to_end(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, smtp: FakeSmtp
) -> None:
    company, other = await make_tenant(), await make_tenant()
    auth = company.auth
    me = await my_id(http, auth)
    long_ago = datetime.now(UTC) - timedelta(days=90)
    anna = await _client(company, "Anna Smirnova", "anna@example.org", tags=["vip"], responsible_id=me)
    await _client(company, "Boris Ivanov", "boris@example.org", tags=["vip"], last_contact_at=long_ago)
    await _client(company, "Bounce Person", "bounce@example.org", tags=["vip"])
    await _client(company, "Not Vip", "plain@example.org")
    await _client(company, "Former Vip", "former@example.org", tags=["vip"], status="former")
    await _client(other, "Other Vip", "othervip@example.org", tags=["vip"])

    filters = {"statuses": ["client"], "tags": ["VIP"]}
    assert (await _post(http, "/api/v1/mailings/segments/count", filters, auth)) == {"clients": 3, "recipients": 3}
    narrower = {**filters, "last_contact_before": (datetime.now(UTC) - timedelta(days=30)).isoformat()}
    assert (await _post(http, "/api/v1/mailings/segments/count", narrower, auth))["clients"] == 1
    bad = await http.post(
        "/api/v1/mailings/segments", json={"name": "x", "filters": {"statuses": ["vip"]}}, headers=auth
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "filters.statuses"
    segment = await _post(http, "/api/v1/mailings/segments", {"name": "VIP clients", "filters": filters}, auth)
    assert (await http.get(f"/api/v1/mailings/segments/{segment['id']}/count", headers=auth)).json()["clients"] == 3
    template = await _post(
        http,
        "/api/v1/mailings/templates",
        {"name": "spring", "subject": "Spring offer for {{ client.first_name }}",
         "text": "Dear {{ client.name }}, {{ responsible.name }} of {{ company.name }} writes.\n"
                 "Unsubscribe: {{ unsubscribe_url }}\n"},
        auth,
    )  # fmt: skip
    preview = await _post(http, f"/api/v1/mailings/templates/{template['id']}/preview", {"client_id": anna}, auth)
    assert preview["subject"] == "Spring offer for Anna" and "Olga Petrova of Acme Trading" in preview["text"]
    test = await _post(http, f"/api/v1/mailings/templates/{template['id']}/test", {"client_id": anna}, auth)
    assert test["to"] == company.email
    assert [item.recipients for item in smtp.received] == [(company.email,)]
    smtp.clear()

    mailing = await _post(
        http, "/api/v1/mailings", {"name": "Spring", "segment_id": segment["id"], "template_id": template["id"]}, auth
    )
    assert mailing["state"] == "draft"
    # The other company cannot see, schedule or use any of it.
    assert (await http.get(f"/api/v1/mailings/{mailing['id']}", headers=other.auth)).status_code == 404
    stolen = await http.post(
        "/api/v1/mailings", json={"name": "x", "segment_id": segment["id"], "template_id": template["id"]},
        headers=other.auth,
    )  # fmt: skip
    assert stolen.status_code == 422
    await _post(http, f"/api/v1/mailings/{mailing['id']}/schedule", {}, auth)
    finished = await _until_finished(http, services, mailing["id"], auth)
    assert finished["state"] == "sent"
    assert finished["progress"] == {"total": 3, "sent": 2, "failed": 1, "pending": 0, "cancelled": 0}

    letters = {item.recipients[0]: item.message for item in smtp.received}
    assert sorted(letters) == ["anna@example.org", "boris@example.org"]
    letter = letters["anna@example.org"]
    assert letter["Subject"] == "Spring offer for Anna"
    link = re.search(r"<(https?://\S+/unsubscribe/\S+)>", str(letter["List-Unsubscribe"]))
    assert link and letter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.group(1) in letter.get_body().get_content()  # type: ignore[union-attr]

    # The link works without login (one-click POST); GET only asks; an altered link does nothing.
    path = "/unsubscribe/" + link.group(1).rsplit("/unsubscribe/", 1)[1]
    asked = await http.get(path)
    assert asked.status_code == 200 and "anna@example.org" in asked.text
    assert (await http.post(path[:-3] + "AAA")).status_code == 410
    done = await http.post(path)
    assert done.status_code == 200 and "no more mailings" in done.text
    assert (await http.post(path)).status_code == 200  # twice is fine

    # Later mailings leave out the unsubscribed and the bounced address.
    counted = await http.get(f"/api/v1/mailings/segments/{segment['id']}/count", headers=auth)
    assert counted.json() == {"clients": 3, "recipients": 1}
    smtp.clear()
    again = await _post(
        http, "/api/v1/mailings", {"name": "Again", "segment_id": segment["id"], "template_id": template["id"]}, auth
    )
    await _post(http, f"/api/v1/mailings/{again['id']}/schedule", {}, auth)
    assert (await _until_finished(http, services, again["id"], auth))["progress"]["total"] == 1
    assert [item.recipients for item in smtp.received] == [("boris@example.org",)]
    assert [item["name"] for item in (await http.get("/api/v1/mailings", headers=auth)).json()] == ["Again", "Spring"]
    assert (await http.get("/api/v1/mailings", headers=other.auth)).json() == []

    audit = (await http.get("/api/v1/audit", headers=auth)).json()
    actions = {entry["action"] for entry in audit.get("items", audit) if isinstance(entry, dict)}
    assert {"segment.created", "mail_template.created", "mailing.scheduled", "mailing.unsubscribed"} <= actions


async def test_cancel_before_and_during(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, smtp: FakeSmtp
) -> None:
    company = await make_tenant()
    auth = company.auth
    for number in range(3):
        await _client(company, f"Client {number}", f"c{number}@example.org")
    segment = await _post(http, "/api/v1/mailings/segments", {"name": "all", "filters": {}}, auth)
    template = await _post(http, "/api/v1/mailings/templates", {"name": "t", "subject": "s", "text": "t"}, auth)
    body = {"name": "later", "segment_id": segment["id"], "template_id": template["id"]}
    mailing = await _post(http, "/api/v1/mailings", body, auth)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    scheduled = await _post(http, f"/api/v1/mailings/{mailing['id']}/schedule", {"at": later}, auth)
    assert scheduled["state"] == "scheduled" and scheduled["scheduled_at"] is not None
    again = await http.post(f"/api/v1/mailings/{mailing['id']}/schedule", json={}, headers=auth)
    assert again.status_code == 409
    cancelled = await _post(http, f"/api/v1/mailings/{mailing['id']}/cancel", {}, auth)
    assert cancelled["state"] == "cancelled"
    # The timer comes due and finds nothing to do.
    await services.db.pool.execute(
        "UPDATE platform.timers SET due_at = now() WHERE kind = 'mailings.send' AND payload->>'mailing_id' = $1"
        " AND tenant_id = $2",
        str(mailing["id"]),
        (await tenant_of(company)).id,
    )
    await run_due(services.db.pool, limit=10)
    assert smtp.received == []
    assert (await http.post(f"/api/v1/mailings/{mailing['id']}/cancel", json={}, headers=auth)).status_code == 409


async def test_module_and_monthly_limit(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    start = await make_tenant(edition="start")
    refused = await http.get("/api/v1/mailings", headers=start.auth)
    assert refused.status_code == 402 and refused.json()["module"] == "mailings"

    company = await make_tenant()
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        # Letters of mailings started this month count against the edition's 20,000.
        await scope_connection().execute(
            "INSERT INTO mailing_segments (name) VALUES ('old');"
            "INSERT INTO mailing_templates (name, subject, text) VALUES ('old', 's', 't');"
            "INSERT INTO mailings (name, segment_id, template_id, state, started_at, total)"
            " SELECT 'old', s.id, t.id, 'sent', now(), 20000 FROM mailing_segments s, mailing_templates t"
        )
    await _client(company, "One", "one@example.org")
    segment = await _post(http, "/api/v1/mailings/segments", {"name": "all", "filters": {}}, company.auth)
    template = await _post(http, "/api/v1/mailings/templates", {"name": "t", "subject": "s", "text": "t"}, company.auth)
    body = {"name": "over", "segment_id": segment["id"], "template_id": template["id"]}
    mailing = await _post(http, "/api/v1/mailings", body, company.auth)
    over = await http.post(f"/api/v1/mailings/{mailing['id']}/schedule", json={}, headers=company.auth)
    assert over.status_code == 402 and over.json()["quota"] == "mailings_per_month"
