"""Mailings over the API: segments with a live count, templates checked when saved, preview
and test send, scheduled sending over SMTP with an unsubscribe link that needs no login,
progress, cancel, the edition's module and monthly limit — and two companies kept apart."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine

from crm.platform.mail import install_mail
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.timers import in_process_runners_paused, run_due
from crm.settings import Settings, load_settings
from crm.tenants.mailings.delivery import MAX_DELIVERY_ATTEMPTS
from crm.tenants.mailings.unsubscribe import unsubscribe_token
from tests.conftest import SignedUpTenant, TenantFactory
from tests.fakes.smtp import FakeSmtp
from tests.integration.helpers import my_id, tenant_of


@contextlib.contextmanager
def _sending_to(settings: Settings, server: FakeSmtp) -> Iterator[FakeSmtp]:
    """Mail of this process goes to ``server`` while the block runs."""
    env = {"CRM_DATA_DIR": str(settings.data_dir), "CRM_SECRET_KEY": "k" * 40, "CRM_SMTP_URL": server.url}
    install_mail(replace(settings, mail=replace(settings.mail, smtp=load_settings(env).mail.smtp)))
    try:
        yield server
    finally:
        install_mail(settings)


@pytest.fixture
def smtp(settings: Settings) -> Iterator[FakeSmtp]:
    with FakeSmtp(refuse={"bounce@example.org"}) as server, _sending_to(settings, server):
        yield server


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


async def _run_everything_due(services: Services) -> None:
    """Run every due timer: other tests' timers share the database and may come first."""
    while await run_due(services.db.pool, limit=10):
        pass


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


async def _walk(http: httpx.AsyncClient, path: str, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await http.get(path, headers=auth, params={**params, "cursor": cursor} if cursor else params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"} and len(body["items"]) <= params.get("limit", 50)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_lists_follow_the_listing_conventions(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    for owner, names in ((company, ["Gamma", "alpha", "Beta"]), (other, ["Other"])):
        for name in names:
            segment = await _post(http, "/api/v1/mailings/segments", {"name": name, "filters": {}}, owner.auth)
            template = await _post(
                http, "/api/v1/mailings/templates", {"name": name, "subject": "s", "text": "t"}, owner.auth
            )
            body = {"name": name, "segment_id": segment["id"], "template_id": template["id"]}
            await _post(http, "/api/v1/mailings", body, owner.auth)

    for path in ("/api/v1/mailings/segments", "/api/v1/mailings/templates", "/api/v1/mailings"):
        everything = await _walk(http, path, company.auth, limit=200)
        assert sorted(item["name"] for item in everything) == ["Beta", "Gamma", "alpha"], path
        for field in ("id", "name", "created_at"):
            ascending = await _walk(http, path, company.auth, sort=field, limit=2)
            assert len({item["id"] for item in ascending}) == 3, (path, field)
            assert await _walk(http, path, company.auth, sort=f"-{field}", limit=1) == ascending[::-1], (path, field)
        # The database's collation orders the names; spot-check one pair that every collation agrees on.
        by_name = [item["name"] for item in await _walk(http, path, company.auth, sort="name", limit=2)]
        assert by_name.index("Beta") < by_name.index("Gamma"), by_name
        assert [item["name"] for item in await _walk(http, path, company.auth, q="ALP")] == ["alpha"]
        # The other company's rows never show up, whatever the page size.
        assert [item["name"] for item in await _walk(http, path, other.auth, limit=1)] == ["Other"], path
        bad = await http.get(path, headers=company.auth, params={"sort": "filters"})
        assert bad.status_code == 422 and [error["field"] for error in bad.json()["errors"]] == ["sort"]
        garbage = await http.get(path, headers=company.auth, params={"cursor": "nope"})
        assert garbage.status_code == 422 and garbage.json()["errors"][0]["field"] == "cursor"

    # Mailings: newest first by default, filtered by state.
    newest = await _walk(http, "/api/v1/mailings", company.auth, limit=2)
    assert [item["name"] for item in newest] == ["Beta", "alpha", "Gamma"]
    assert all(item["progress"]["total"] == 0 for item in newest)
    assert len(await _walk(http, "/api/v1/mailings", company.auth, state="draft")) == 3
    assert await _walk(http, "/api/v1/mailings", company.auth, state="sent") == []
    bad_state = await http.get("/api/v1/mailings", headers=company.auth, params={"state": "nope"})
    assert bad_state.status_code == 422 and bad_state.json()["errors"][0]["field"] == "state"


async def _delivery(company: SignedUpTenant, email: str) -> tuple[str, int]:
    """A delivery row of a sent mailing, written directly: (tenant id, delivery id)."""
    tenant = await tenant_of(company)
    async with tenant_scope(tenant):
        delivery_id: int = await scope_connection().fetchval(
            "WITH s AS (INSERT INTO mailing_segments (name) VALUES ('s') RETURNING id),"
            " t AS (INSERT INTO mailing_templates (name, subject, text) VALUES ('t', 's', 't') RETURNING id),"
            " m AS (INSERT INTO mailings (name, segment_id, template_id, state)"
            "       SELECT 'm', s.id, t.id, 'sent' FROM s, t RETURNING id)"
            " INSERT INTO mailing_deliveries (mailing_id, email, state) SELECT m.id, $1, 'sent' FROM m RETURNING id",
            email,
        )
    return tenant.id, delivery_id


async def test_unsubscribe_page_speaks_russian_and_english(
    make_tenant: TenantFactory, http: httpx.AsyncClient, settings: Settings
) -> None:
    russian, english = await make_tenant(locale="ru"), await make_tenant(locale="en")
    key = settings.secret_key.reveal()
    ru_path = "/unsubscribe/" + unsubscribe_token(key, *await _delivery(russian, "ivan@example.org"))
    en_path = "/unsubscribe/" + unsubscribe_token(key, *await _delivery(english, "john@example.org"))

    def says(response: httpx.Response, language: str, *words: str) -> bool:
        return (
            response.headers["content-language"] == language
            and f'<html lang="{language}">' in response.text
            and all(word in response.text for word in words)
        )

    # No preference from the browser: the company's language.
    assert says(await http.get(ru_path), "ru", "Отписаться", "ivan@example.org", "Acme Trading")
    assert says(await http.get(en_path), "en", "Stop receiving mailings from Acme Trading at john@example.org")
    # The browser's preference, by its q-values, wins when it names Russian or English.
    assert says(await http.get(ru_path, headers={"Accept-Language": "en-US,en;q=0.9"}), "en", "Unsubscribe")
    assert says(await http.get(en_path, headers={"Accept-Language": "de, en;q=0.5, ru-RU;q=0.8"}), "ru", "Отписка")
    assert says(await http.get(en_path, headers={"Accept-Language": "de-DE, fr;q=0.5, ru;q=0"}), "en", "Unsubscribe")

    done = await http.post(ru_path)
    assert done.status_code == 200 and says(done, "ru", "больше не будут приходить рассылки", "ivan@example.org")
    done = await http.post(en_path, headers={"Accept-Language": "ru"})
    assert done.status_code == 200 and says(done, "ru", "больше не будут приходить", "john@example.org")
    assert says(await http.post(en_path), "en", "john@example.org will receive no more mailings")

    # A link that is not genuine: no company to ask, so the browser's language or English.
    bad = await http.get(ru_path[:-3] + "AAA", headers={"Accept-Language": "ru-RU"})
    assert bad.status_code == 410 and says(bad, "ru", "Ссылка недействительна")
    bad = await http.post(en_path[:-3] + "AAA")
    assert bad.status_code == 410 and says(bad, "en", "not valid")

    # Each company's unsubscription stays its own.
    for company, email in ((russian, "ivan@example.org"), (english, "john@example.org")):
        async with tenant_scope(await tenant_of(company)):
            rows = await scope_connection().fetch("SELECT email FROM mailing_unsubscribes")
        assert [row["email"] for row in rows] == [email]


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
    done = await http.post(path, headers={"Accept-Language": "en-GB,en;q=0.9"})
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
    listed = (await http.get("/api/v1/mailings", headers=auth)).json()
    assert [item["name"] for item in listed["items"]] == ["Again", "Spring"] and listed["next_cursor"] is None
    assert listed["items"][1]["progress"]["sent"] == 2
    assert (await http.get("/api/v1/mailings", headers=other.auth)).json() == {"items": [], "next_cursor": None}

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


async def test_monthly_limit_follows_the_company_month(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    moscow = await make_tenant(timezone="Europe/Moscow")  # UTC+3: its March starts at 21:00 UTC on Feb 28
    london = await make_tenant(timezone="Europe/London")  # UTC+0 until the end of March
    drafts: dict[str, tuple[int, int]] = {}  # slug → (segment id, template id)
    for company in (moscow, london):
        async with tenant_scope(await tenant_of(company)):
            # The edition's 20,000 letters used up by a mailing that started on 10 February.
            await scope_connection().execute(
                "INSERT INTO mailing_segments (name) VALUES ('old');"
                "INSERT INTO mailing_templates (name, subject, text) VALUES ('old', 's', 't');"
                "INSERT INTO mailings (name, segment_id, template_id, state, started_at, total)"
                " SELECT 'old', s.id, t.id, 'sent', '2030-02-10T12:00:00Z', 20000"
                " FROM mailing_segments s, mailing_templates t"
            )
        await _client(company, "One", "one@example.org")
        segment = await _post(http, "/api/v1/mailings/segments", {"name": "all", "filters": {}}, company.auth)
        template = await _post(http, "/api/v1/mailings/templates", {"name": "t", "subject": "s", "text": "t"},
                               company.auth)  # fmt: skip
        drafts[company.slug] = (segment["id"], template["id"])

    async def schedule(company: SignedUpTenant) -> int:
        """Schedule a fresh one-recipient draft now: the status (a scheduled one is cancelled again)."""
        segment_id, template_id = drafts[company.slug]
        body = {"name": "new", "segment_id": segment_id, "template_id": template_id}
        mailing = await _post(http, "/api/v1/mailings", body, company.auth)
        response = await http.post(f"/api/v1/mailings/{mailing['id']}/schedule", json={}, headers=company.auth)
        if response.status_code == 200:
            await _post(http, f"/api/v1/mailings/{mailing['id']}/cancel", {}, company.auth)
        else:
            assert response.json()["quota"] == "mailings_per_month", response.text
        return response.status_code

    with time_machine.travel(datetime(2030, 2, 28, 20, 30, tzinfo=UTC), tick=False):
        assert await schedule(moscow) == 402  # 23:30 on 28 February in Moscow
        assert await schedule(london) == 402
    with time_machine.travel(datetime(2030, 2, 28, 21, 30, tzinfo=UTC), tick=False):
        assert await schedule(moscow) == 200  # 00:30 on 1 March in Moscow: a new month
        assert await schedule(london) == 402  # still February in London (and in UTC)

    async with tenant_scope(await tenant_of(moscow)):
        # Started at 01:00 on 1 March, Moscow time (22:00 on 28 February, UTC).
        await scope_connection().execute(
            "UPDATE mailings SET started_at = '2030-02-28T22:00:00Z', total = 20000 WHERE name = 'old'"
        )
    with time_machine.travel(datetime(2030, 3, 1, 10, 0, tzinfo=UTC), tick=False):
        assert await schedule(moscow) == 402  # counted in Moscow's March, though it is February's in UTC
        assert await schedule(london) == 200


async def test_letters_refused_for_now_are_tried_again_after_a_back_off(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, settings: Settings
) -> None:
    company, other = await make_tenant(), await make_tenant()
    auth = company.auth
    for name in ("grey", "busy", "fine", "never"):
        await _client(company, name.title(), f"{name}@example.org")
    await _client(other, "Grey Elsewhere", "grey@example.org")
    segment = await _post(http, "/api/v1/mailings/segments", {"name": "all", "filters": {}}, auth)
    template = await _post(http, "/api/v1/mailings/templates", {"name": "t", "subject": "s", "text": "t"}, auth)
    body = {"name": "patient", "segment_id": segment["id"], "template_id": template["id"]}
    mailing = await _post(http, "/api/v1/mailings", body, auth)
    tenant = await tenant_of(company)

    async def deliveries() -> dict[str, dict[str, Any]]:
        async with tenant_scope(tenant):
            rows = await scope_connection().fetch(
                "SELECT email, state, attempts, error, lease_until > now() + interval '30 seconds' AS later,"
                " lease_until > now() + interval '240 seconds' AS much_later"
                " FROM mailing_deliveries WHERE mailing_id = $1",
                mailing["id"],
            )
        return {row["email"].split("@")[0]: dict(row) for row in rows}

    async def time_passes() -> None:
        """The back-off runs out: the database's clock cannot be moved, so the times are."""
        async with tenant_scope(tenant):
            await scope_connection().execute(
                "UPDATE mailing_deliveries SET lease_until = now() WHERE mailing_id = $1 AND state = 'pending'",
                mailing["id"],
            )
        await services.db.pool.execute(
            "UPDATE platform.timers SET due_at = now() WHERE kind = 'mailings.send' AND tenant_id = $1"
            " AND payload->>'mailing_id' = $2 AND state = 'pending'",
            tenant.id,
            str(mailing["id"]),
        )

    # Only this test runs the mailing's timers: the suite's app would run them in the
    # background, and the assertions below would race it.
    async with in_process_runners_paused():
        with (
            FakeSmtp(
                defer={"grey@example.org": 2, "never@example.org": 99}, defer_data={"busy@example.org": 1}
            ) as smtp,
            _sending_to(settings, smtp),
        ):
            await _post(http, f"/api/v1/mailings/{mailing['id']}/schedule", {}, auth)
            await _run_everything_due(services)
            first = await deliveries()
            assert [item.recipients for item in smtp.received] == [("fine@example.org",)]
            assert first["fine"]["state"] == "sent"
            for name in ("grey", "busy", "never"):
                # Refused for now (at RCPT, or at the end of DATA): waiting a minute for the next attempt.
                assert first[name]["state"] == "pending" and first[name]["attempts"] == 1, first[name]
                assert first[name]["later"] and "451" in first[name]["error"], first[name]
            progress = (await http.get(f"/api/v1/mailings/{mailing['id']}", headers=auth)).json()
            assert progress["state"] == "sending" and progress["progress"]["pending"] == 3
            # The run ended; a timer resumes the mailing when the first letter is due, not before.
            resume = await services.db.pool.fetchval(
                "SELECT bool_and(due_at > now() + interval '30 seconds') FROM platform.timers"
                " WHERE kind = 'mailings.send' AND tenant_id = $1 AND payload->>'mailing_id' = $2"
                " AND state = 'pending'",
                tenant.id,
                str(mailing["id"]),
            )
            assert resume is True
            await _run_everything_due(services)
            assert len(smtp.received) == 1

            await time_passes()
            await _run_everything_due(services)
            second = await deliveries()
            assert second["busy"]["state"] == "sent" and second["busy"]["attempts"] == 2
            assert second["grey"]["state"] == "pending" and second["grey"]["attempts"] == 2
            assert second["grey"]["much_later"], "the second wait is longer than the first"

            for _ in range(5):
                await time_passes()
                await _run_everything_due(services)
            final = await deliveries()
            assert final["grey"]["state"] == "sent" and final["grey"]["attempts"] == 3
            # Attempts are bounded: the address that never takes a letter ends failed.
            assert final["never"]["state"] == "failed" and final["never"]["attempts"] == MAX_DELIVERY_ATTEMPTS
            assert "451" in final["never"]["error"]
            assert sorted(smtp.count_by_recipient().items()) == [
                ("busy@example.org", 1), ("fine@example.org", 1), ("grey@example.org", 1)
            ]  # fmt: skip
            assert smtp.deferred.count(("rcpt", "never@example.org")) == MAX_DELIVERY_ATTEMPTS

    done = (await http.get(f"/api/v1/mailings/{mailing['id']}", headers=auth)).json()
    assert done["state"] == "sent"
    assert done["progress"] == {"total": 4, "sent": 3, "failed": 1, "pending": 0, "cancelled": 0}
    assert (await http.get(f"/api/v1/mailings/{mailing['id']}", headers=other.auth)).status_code == 404
    assert (await http.get("/api/v1/mailings", headers=other.auth)).json()["items"] == []
