"""Web forms: a form on a company's website posts a visitor's request to the public
``/api/v1/forms/{key}`` and a lead appears in that company only. Keys, CORS, the honeypot,
redirects, rate limits and bad input; managing forms over the API and on the console's
settings page. Real HTTP, real PostgreSQL, two companies in every test."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm.admin_ui.texts import Texts
from crm.tenants.leads import web_form_capture
from tests.conftest import STAFF_PASSWORD, SignedUpTenant, TenantFactory, add_staff
from tests.integration.console_support import Browser, csrf_in
from tests.integration.test_deals import audit, fields
from tests.support import random_ip

RU, EN = Texts("ru"), Texts("en")
PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SHOP = "https://shop.example"


async def new_form(http: httpx.AsyncClient, company: SignedUpTenant, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/web-forms", json={"name": "Заявка с сайта", **body}, headers=company.auth)
    assert response.status_code == 201, response.text
    form: dict[str, Any] = response.json()
    return form


async def leads_of(http: httpx.AsyncClient, company: SignedUpTenant) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/leads", headers=company.auth, params={"limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def submit(
    http: httpx.AsyncClient, key: str, *, address: str | None = None, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    """Post to the form as a visitor from ``address`` (a fresh one by default)."""
    sent = {"X-Forwarded-For": address or random_ip(), **(headers or {})}
    return await http.post(f"/api/v1/forms/{key}", headers=sent, **kw)


async def test_a_plain_form_post_becomes_a_lead_of_its_company_only(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    ivan = await add_staff(http, romashka, "ivan", role="manager")
    ours = await new_form(http, romashka, responsible_id=ivan.id)
    theirs = await new_form(http, lyutik, name="Контакты")
    assert len(ours["public_key"]) == 22 and ours["public_key"] != theirs["public_key"]
    assert ours["action_url"].endswith(f"/api/v1/forms/{ours['public_key']}")
    assert (ours["responsible_id"], ours["allowed_origins"], ours["is_active"]) == (ivan.id, [], True)

    # A browser posting the embed snippet, no script: the thank-you page in the visitor's language.
    posted = await submit(
        http,
        ours["public_key"],
        headers={**PAGE, "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"},
        data={
            "name": "  Анна   Кузнецова ",
            "phone": "8 (912) 345-67-89",
            "email": " Anna@Vector.example ",
            "company": "ООО «Вектор»",
            "comment": "Перезвоните после обеда",
            "website": "",
        },
    )
    assert posted.status_code == 200 and posted.headers["content-type"].startswith("text/html")
    assert RU("webform.thanks.title") in posted.text and "Acme Trading" in html.unescape(posted.text)

    [lead] = await leads_of(http, romashka)
    assert (lead["name"], lead["company_name"], lead["phones"], lead["emails"]) == (
        "Анна Кузнецова",
        "ООО «Вектор»",
        ["+79123456789"],
        ["anna@vector.example"],
    )
    assert (lead["source"], lead["status"], lead["note"]) == ("web_form", "new", "Перезвоните после обеда")
    assert (lead["responsible_id"], lead["author_id"]) == (ivan.id, None)
    assert await leads_of(http, lyutik) == []
    # The responsible (a manager: own leads only) sees it; on record as the form.
    mine = await http.get("/api/v1/leads", headers=ivan.auth)
    assert [item["id"] for item in mine.json()["items"]] == [lead["id"]]
    # … and is told at once (the console's notifications; e-mail and Telegram as they chose).
    notices = (await http.get("/api/v1/notifications", headers=ivan.auth)).json()["items"]
    assert [(notice["kind"], notice["entity"], notice["entity_id"]) for notice in notices] == [
        ("web_lead", "lead", lead["id"])
    ]
    assert "Анна Кузнецова" in notices[0]["title"] and "+79123456789" in notices[0]["body"]
    assert (await http.get("/api/v1/notifications", headers=lyutik.auth)).json()["items"] == []
    [created] = await audit(http, romashka, action="lead.created")
    assert (created["actor_kind"], created["actor_label"], created["entity_id"], created["channel"]) == (
        "anonymous",
        "web_form:Заявка с сайта",
        str(lead["id"]),
        "web_form",
    )

    # JSON from a script: 201 {"ok": true}; the other company's form has no responsible.
    scripted = await submit(http, theirs["public_key"], json={"name": "Bob", "email": "bob@example.com"})
    assert (scripted.status_code, scripted.json()) == (201, {"ok": True})
    [bob] = await leads_of(http, lyutik)
    assert (bob["name"], bob["emails"], bob["responsible_id"]) == ("Bob", ["bob@example.com"], None)
    # multipart/form-data (a script's FormData) is a form post too.
    multipart = await submit(
        http, theirs["public_key"], files={"name": (None, "Carol"), "phone": (None, "+7 495 1234567")}
    )
    assert multipart.status_code == 201, multipart.text
    assert sorted(item["name"] for item in await leads_of(http, lyutik)) == ["Bob", "Carol"]
    assert len(await leads_of(http, romashka)) == 1


async def test_the_honeypot_stores_nothing_and_answers_as_usual(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    key = (await new_form(http, romashka))["public_key"]
    await new_form(http, lyutik)
    bot = await submit(
        http, key, headers={**PAGE, "Accept-Language": "en"}, data={"name": "Buy now", "website": "http://spam.example"}
    )
    assert bot.status_code == 200 and EN("webform.thanks.title") in bot.text
    scripted_bot = await submit(http, key, json={"website": "spam"})  # no name either: still "fine"
    assert (scripted_bot.status_code, scripted_bot.json()) == (201, {"ok": True})
    assert await leads_of(http, romashka) == [] and await leads_of(http, lyutik) == []


async def test_unknown_deactivated_and_rotated_keys(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    form = await new_form(http, romashka)
    other = await new_form(http, lyutik)
    key = form["public_key"]

    unknown = await submit(http, "no-such-key-at-all-000", json={"name": "Anna"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    assert (await submit(http, "x" * 300, json={"name": "Anna"})).status_code == 404

    # Switched off: 404; switched on again: the same key works.
    assert (await http.delete(f"/api/v1/web-forms/{form['id']}", headers=romashka.auth)).status_code == 204
    assert (await submit(http, key, json={"name": "Anna"})).status_code == 404
    listed = (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"]
    assert [(item["id"], item["is_active"]) for item in listed] == [(form["id"], False)]
    back = await http.patch(f"/api/v1/web-forms/{form['id']}", json={"is_active": True}, headers=romashka.auth)
    assert back.status_code == 200 and back.json()["public_key"] == key
    assert (await submit(http, key, json={"name": "Anna"})).status_code == 201

    # A new key: the old one answers 404 at once, the new one works.
    rotated = await http.post(f"/api/v1/web-forms/{form['id']}/rotate-key", headers=romashka.auth)
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["public_key"]
    assert new_key != key and rotated.json()["action_url"].endswith(new_key)
    assert (await submit(http, key, json={"name": "Boris"})).status_code == 404
    assert (await submit(http, new_key, json={"name": "Boris"})).status_code == 201
    assert sorted(lead["name"] for lead in await leads_of(http, romashka)) == ["Anna", "Boris"]

    # Each company has its own forms (ids are per company: both forms are number 1); the
    # other's key still works, for it alone.
    assert (await http.post("/api/v1/web-forms/999/rotate-key", headers=romashka.auth)).status_code == 404
    listed = (await http.get("/api/v1/web-forms", headers=lyutik.auth)).json()["items"]
    assert [(item["id"], item["public_key"]) for item in listed] == [(other["id"], other["public_key"])]
    assert (await submit(http, other["public_key"], json={"name": "Vera"})).status_code == 201
    assert [lead["name"] for lead in await leads_of(http, lyutik)] == ["Vera"]
    assert sorted(lead["name"] for lead in await leads_of(http, romashka)) == ["Anna", "Boris"]
    actions = [entry["action"] for entry in await audit(http, romashka, entity="web_form")]
    assert {"web_form.created", "web_form.deactivated", "web_form.activated", "web_form.key_rotated"} <= set(actions)


async def test_cors_and_redirects_follow_the_allowed_sites(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    strict = await new_form(http, romashka, allowed_origins=["HTTPS://Shop.Example/", "https://shop.example"])
    assert strict["allowed_origins"] == [SHOP]
    open_form = await new_form(http, lyutik)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    allowed = await http.options(f"/api/v1/forms/{strict['public_key']}", headers={"Origin": SHOP, **preflight})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    foreign = await http.options(
        f"/api/v1/forms/{strict['public_key']}", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in foreign.headers
    anywhere = await http.options(
        f"/api/v1/forms/{open_form['public_key']}", headers={"Origin": "https://any.example", **preflight}
    )
    assert anywhere.headers["access-control-allow-origin"] == "*"
    assert (await http.options("/api/v1/forms/unknown-key", headers={"Origin": SHOP, **preflight})).status_code == 404

    # A script on the allowed site posts JSON and may read the answer; another site's post is refused.
    ok = await submit(http, strict["public_key"], headers={"Origin": SHOP}, json={"name": "Anna"})
    assert ok.status_code == 201 and ok.headers["access-control-allow-origin"] == SHOP
    bad = await submit(http, strict["public_key"], headers={"Origin": SHOP}, json={"phone": "123"})
    assert bad.status_code == 422 and bad.headers["access-control-allow-origin"] == SHOP  # readable by the script
    refused = await submit(http, strict["public_key"], headers={"Origin": "https://evil.example"}, data={"name": "X"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert [lead["name"] for lead in await leads_of(http, romashka)] == ["Anna"]

    # A page sent on: to a page of the allowed site only.
    page = {**PAGE, "Origin": SHOP, "Referer": f"{SHOP}/contacts"}
    sent = await submit(
        http, strict["public_key"], headers=page, data={"name": "Boris", "redirect": f"{SHOP}/thanks?from=form"}
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"{SHOP}/thanks?from=form"
    for elsewhere in ("https://evil.example/phish", "https://shop.example.evil.example/", "javascript:alert(1)"):
        kept = await submit(http, strict["public_key"], headers=page, data={"name": "Vera", "redirect": elsewhere})
        assert kept.status_code == 200 and "evil" not in kept.text and "javascript" not in kept.text
        assert f'href="{SHOP}/contacts"' in kept.text  # the way back to the page the form was on
    # A form open to any site sends the browser back only to the site that posted.
    mine = "https://lyutik.example"
    home = await submit(
        http,
        open_form["public_key"],
        headers={**PAGE, "Origin": mine},
        data={"name": "Gleb", "redirect": f"{mine}/spasibo"},
    )
    assert home.status_code == 303 and home.headers["location"] == f"{mine}/spasibo"
    away = await submit(
        http, open_form["public_key"], headers={**PAGE, "Origin": mine}, data={"name": "Gleb", "redirect": SHOP}
    )
    assert away.status_code == 200
    assert len(await leads_of(http, romashka)) == 5 and len(await leads_of(http, lyutik)) == 2


async def test_bad_input_names_the_field(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    key = (await new_form(http, romashka))["public_key"]
    await new_form(http, lyutik)

    missing = await submit(http, key, data={"phone": "+7 912 345 67 89"})
    assert missing.status_code == 422 and fields(missing) == {"name"}
    wrong = await submit(http, key, json={"name": "Anna", "phone": "12", "email": "not-mail", "company": "x" * 301})
    assert wrong.status_code == 422 and fields(wrong) == {"phone", "email", "company"}
    typed = await submit(http, key, json={"name": 42})
    assert typed.status_code == 422 and fields(typed) == {"name"}
    not_json = await submit(http, key, content=b"{oops", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and fields(not_json) == {"body"}
    plain = await submit(http, key, content=b"name=Anna", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    huge = await submit(http, key, data={"name": "Anna", "comment": "x" * 70_000})
    assert huge.status_code == 413
    assert await leads_of(http, romashka) == [] and await leads_of(http, lyutik) == []

    # Managing forms: the fields are named too.
    refused = await http.post(
        "/api/v1/web-forms",
        json={"name": " ", "responsible_id": 99999, "allowed_origins": [SHOP, "http://shop.example", "ftp://x"]},
        headers=romashka.auth,
    )
    assert refused.status_code == 422
    assert fields(refused) == {"name", "responsible_id", "allowed_origins.1", "allowed_origins.2"}


async def test_rate_limits_per_address_and_per_form(
    make_tenant: TenantFactory, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    key = (await new_form(http, romashka))["public_key"]
    other_key = (await new_form(http, lyutik))["public_key"]
    monkeypatch.setattr(web_form_capture, "ADDRESS_LIMIT", 3)
    address = random_ip()
    for _ in range(3):
        assert (await submit(http, key, address=address, json={"name": "Anna"})).status_code == 201
    limited = await submit(http, key, address=address, json={"name": "Anna"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert (await submit(http, key, json={"name": "Boris"})).status_code == 201  # another address

    monkeypatch.setattr(web_form_capture, "FORM_LIMIT", 5)  # the form has had 4 so far
    assert (await submit(http, key, json={"name": "Vera"})).status_code == 201
    crowded = await submit(http, key, json={"name": "Gleb"})
    assert crowded.status_code == 429
    assert (await submit(http, other_key, json={"name": "Dina"})).status_code == 201  # another form is not full
    assert len(await leads_of(http, romashka)) == 5 and len(await leads_of(http, lyutik)) == 1


async def test_managing_forms_needs_the_settings_rights_and_the_module(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    romashka, starter = await make_tenant(), await make_tenant(edition="start")
    form = await new_form(http, romashka)
    manager = await add_staff(http, romashka, "ivan", role="manager")
    assert (await http.get("/api/v1/web-forms", headers=manager.auth)).status_code == 403
    assert (await http.post("/api/v1/web-forms", json={"name": "X"}, headers=manager.auth)).status_code == 403
    assert (await http.post(f"/api/v1/web-forms/{form['id']}/rotate-key", headers=manager.auth)).status_code == 403
    # An edition without web forms: 402 naming the editions that have them.
    lacking = await http.get("/api/v1/web-forms", headers=starter.auth)
    assert lacking.status_code == 402 and lacking.json()["module"] == "webforms"
    assert (await http.post("/api/v1/web-forms", json={"name": "X"}, headers=starter.auth)).status_code == 402
    patched = await http.patch(f"/api/v1/web-forms/{form['id']}", json={"name": "Mine"}, headers=starter.auth)
    assert patched.status_code == 402
    renamed = await http.patch(f"/api/v1/web-forms/{form['id']}", json={"name": "  Главная  "}, headers=romashka.auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Главная"


# ---------------------------------------------------------------- the console page


@pytest.fixture
async def browsers(base_url: str) -> AsyncIterator[list[Browser]]:
    opened = [Browser.open(base_url) for _ in range(3)]
    try:
        yield opened
    finally:
        for browser in opened:
            await browser.close()


async def signed_in(browser: Browser, company: SignedUpTenant, **who: str) -> Browser:
    response = await browser.sign_in(company, **who)
    assert response.status_code == 303, response.text
    return browser


async def test_the_console_lists_forms_with_their_snippet_and_manages_them(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    theirs = await new_form(http, lyutik, name="Форма Лютика")
    ivan = await add_staff(http, romashka, "ivan", role="manager")
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/webforms"

    empty = await admin.get(path)
    assert empty.status_code == 200 and RU("settings.webforms.none") in empty.text
    assert RU("settings.tab.webforms") in (await admin.get(f"/{romashka.slug}/admin/settings")).text
    assert theirs["public_key"] not in empty.text and "Форма Лютика" not in empty.text

    # A bad site: the form comes back with the error at its field, what was typed kept.
    refused = await admin.submit(
        path, path, {"name": "Сайт", "responsible_id": str(ivan.id), "allowed_origins": f"{SHOP}\nshop.example/x"}
    )
    assert refused.status_code == 422
    assert (
        "new-origins-error" in refused.text and RU("settings.webforms.line", line=2, detail="").strip() in refused.text
    )
    created = await admin.submit(
        path,
        path,
        {"name": "Сайт", "responsible_id": str(ivan.id), "allowed_origins": f"{SHOP}\nhttps://www.shop.example"},
    )
    assert created.status_code == 303 and created.headers["location"] == f"{path}?saved=1"
    [form] = (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"]
    assert (form["name"], form["responsible_id"], form["allowed_origins"]) == (
        "Сайт",
        ivan.id,
        [SHOP, "https://www.shop.example"],
    )

    # The page shows the form, its key and the embed snippet posting to it (escaped, for copying).
    page = await admin.get(path)
    text = html.unescape(page.text)
    assert "Сайт" in text and form["public_key"] in text
    assert f'<form action="{form["action_url"]}" method="post"' in text
    assert '<input name="website" tabindex="-1"' in text and "position:absolute" in text
    assert "<pre" in page.text and "&lt;form action=" in page.text
    assert theirs["public_key"] not in text  # nothing of the other company

    # The snippet really works: post what it posts.
    visitor = await submit(
        http, form["public_key"], headers={**PAGE, "Origin": SHOP}, data={"name": "Anna", "website": ""}
    )
    assert visitor.status_code == 200

    # A new key, then off, then on — each through a plain form post.
    key_page = f"{path}/{form['id']}/rotate"
    assert (await admin.submit(path, key_page, {})).status_code == 303
    rotated = (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"][0]
    assert rotated["public_key"] != form["public_key"] and rotated["public_key"] in (await admin.get(path)).text
    assert (await admin.submit(path, f"{path}/{form['id']}/deactivate", {})).status_code == 303
    assert (await submit(http, rotated["public_key"], json={"name": "Boris"})).status_code == 404
    assert RU("settings.webforms.inactive") in (await admin.get(path)).text
    # With htmx the fresh panel comes back at once.
    fresh = await admin.get(path)
    swapped = await admin.client.post(
        f"{path}/{form['id']}/activate", data={"_csrf": csrf_in(fresh.text)}, headers={"HX-Request": "true"}
    )
    assert swapped.status_code == 200 and 'id="settings-panel"' in swapped.text
    assert (await submit(http, rotated["public_key"], json={"name": "Boris"})).status_code == 201
    bad_edit = await admin.submit(
        path, f"{path}/{form['id']}/edit", {"name": "", "responsible_id": "", "allowed_origins": "ftp://x"}
    )
    assert bad_edit.status_code == 422 and RU("error.invalid") in bad_edit.text
    assert f"edit-{form['id']}-name-error" in bad_edit.text and f"edit-{form['id']}-origins-error" in bad_edit.text
    edited = await admin.submit(
        path, f"{path}/{form['id']}/edit", {"name": "Сайт 2", "responsible_id": "", "allowed_origins": ""}
    )
    assert edited.status_code == 303
    after = (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"][0]
    assert (after["name"], after["responsible_id"], after["allowed_origins"]) == ("Сайт 2", None, [])

    # No form token: refused, nothing changed.
    forged = await admin.client.post(f"{path}/{form['id']}/deactivate", data={})
    assert forged.status_code == 403
    assert (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"][0]["is_active"] is True

    # A manager's role has no settings rights: neither the page nor the posts.
    manager = await signed_in(browsers[1], romashka, email=ivan.email, password=STAFF_PASSWORD)
    assert (await manager.get(path)).status_code == 403
    posted = await manager.submit(f"/{romashka.slug}/", f"{path}/{form['id']}/deactivate", {})
    assert posted.status_code == 403
    assert (await http.get("/api/v1/web-forms", headers=romashka.auth)).json()["items"][0]["is_active"] is True

    # The other company's admin sees only their own form; this company's page is not theirs.
    other_admin = await signed_in(browsers[2], lyutik)
    other_page = await other_admin.get(f"/{lyutik.slug}/admin/settings/webforms")
    assert theirs["public_key"] in other_page.text and rotated["public_key"] not in other_page.text
    assert (await other_admin.get(path)).status_code == 303  # to sign in: no session of this company


async def test_the_console_page_follows_the_edition(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    starter, romashka = await make_tenant(edition="start"), await make_tenant()
    admin = await signed_in(browsers[0], starter)
    assert (await admin.get(f"/{starter.slug}/admin/settings/webforms")).status_code == 402
    assert RU("settings.tab.webforms") not in (await admin.get(f"/{starter.slug}/admin/settings")).text
    other = await signed_in(browsers[1], romashka)
    assert (await other.get(f"/{romashka.slug}/admin/settings/webforms")).status_code == 200
