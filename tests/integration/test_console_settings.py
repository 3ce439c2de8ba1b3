"""The console's admin pages: company settings, call outcomes and task types, pipelines and
stages, custom fields, mail, the plan with its usage meters, and the audit log with its
export. Real HTTP against the app; two companies in every test, neither seeing the
other's; a role without the right gets the 403 page; a post without the form token is
refused."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from crm.admin_ui.texts import Texts
from tests.conftest import STAFF_PASSWORD, SignedUpTenant, TenantFactory, add_staff
from tests.integration.console_support import Browser, csrf_in
from tests.integration.helpers import my_id, seed_client, seed_deal

RU, EN = Texts("ru"), Texts("en")


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


async def manager_of(http: httpx.AsyncClient, browser: Browser, company: SignedUpTenant) -> Browser:
    """A sales manager (no rights on settings, audit or billing) signed in to ``company``."""
    staff = await add_staff(http, company, "ivan", role="manager")
    return await signed_in(browser, company, email=staff.email, password=STAFF_PASSWORD)


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


async def api(http: httpx.AsyncClient, company: SignedUpTenant, path: str) -> Any:
    response = await http.get(path, headers=company.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def post_page_form(browser: Browser, page_path: str, fields: dict[str, str], **headers: str) -> httpx.Response:
    """Post the form of ``page_path`` back to it: every field the page shows (hidden ones too),
    with ``fields`` changed — what a browser sends when a button is pressed."""
    page = await browser.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    data = form_fields(page.text)
    data.update(fields)
    return await browser.client.post(page_path, data=data, headers=headers)


_INPUT = re.compile(r"<input\b([^>]*)>", re.S)
_TEXTAREA = re.compile(r'<textarea\b[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', re.S)
_SELECT = re.compile(r'<select\b[^>]*name="([^"]+)"[^>]*>(.*?)</select>', re.S)
_ATTR = re.compile(r'([a-z_-]+)="([^"]*)"')


def form_fields(page: str) -> dict[str, str]:
    """The values a browser would post from the page's (first editable) form."""
    values: dict[str, str] = {}
    for match in _INPUT.finditer(page):
        attrs = dict(_ATTR.findall(match.group(1)))
        name = attrs.get("name")
        if not name or "disabled" in match.group(1).split():
            continue
        if attrs.get("type") == "checkbox" and " checked" not in match.group(1):
            continue
        values[html.unescape(name)] = html.unescape(attrs.get("value", ""))
    for name, content in _TEXTAREA.findall(page):
        values[name] = html.unescape(content)
    for name, options in _SELECT.findall(page):
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(
            r'<option value="([^"]*)"', options
        )
        if chosen:
            values[name] = html.unescape(chosen.group(1))
    return values


# ---------------------------------------------------------------- company profile


async def test_company_settings_are_changed_by_the_admin_only_and_only_in_their_company(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(company="Ромашка"), await make_tenant(company="Лютик")
    admin = await signed_in(browsers[0], romashka)
    other_admin = await signed_in(browsers[1], lyutik)
    path = f"/{romashka.slug}/admin/settings"

    page = await admin.get(path)
    assert page.status_code == 200 and RU("settings.company.title") in page.text
    assert 'value="Europe/Moscow"' in page.text and '<label for="f-timezone">' in page.text
    assert 'rel="stylesheet" href="/static/console/settings.css"' in page.text
    # The menu lists the admin pages.
    for nav in ("/admin/settings", "/admin/audit", "/admin/billing"):
        assert f'href="/{romashka.slug}{nav}"' in page.text

    fields = {"name": "Ромашка плюс", "timezone": "Mars/Olympus", "locale": "ru", "phone_region": "XX"}
    refused = await admin.submit(path, path, fields)
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.text and 'aria-describedby="f-timezone-error' in refused.text
    assert "is not a known IANA time zone" in refused.text and "f-phone_region-error" in refused.text
    assert 'value="Mars/Olympus"' in refused.text  # what was typed stays in the form

    fields.update(timezone="Asia/Yekaterinburg", phone_region="KZ")
    done = await admin.submit(path, path, fields)
    assert done.status_code == 303 and done.headers["location"] == f"{path}?saved=1"
    assert RU("common.saved") in (await admin.get(done.headers["location"])).text
    settings = await api(http, romashka, "/api/v1/settings/company")
    assert settings == {"name": "Ромашка плюс", "timezone": "Asia/Yekaterinburg", "locale": "ru", "phone_region": "KZ"}
    # With htmx the fresh form comes back at once.
    page = await admin.get(path)
    swapped = await admin.client.post(
        path, data={**fields, "name": "Ромашка", "_csrf": csrf_in(page.text)}, headers={"HX-Request": "true"}
    )
    assert swapped.status_code == 200 and 'id="settings-panel"' in swapped.text and RU("common.saved") in swapped.text

    # The other company is untouched, and its admin cannot reach this one's page.
    assert (await api(http, lyutik, "/api/v1/settings/company"))["timezone"] == "Europe/Moscow"
    assert (await other_admin.get(path)).status_code == 303  # to sign in: no session of this company

    # No form token: refused, nothing changed.
    forged = await admin.client.post(path, data={**fields, "name": "Forged"})
    assert forged.status_code == 403
    assert (await api(http, romashka, "/api/v1/settings/company"))["name"] == "Ромашка"

    # A role that may read the settings sees them without a way to change them.
    reader = await http.patch(
        "/api/v1/roles/operator", json={"rights": {"settings": {"read": "all"}}}, headers=romashka.auth
    )
    assert reader.status_code == 200, reader.text
    operator = await add_staff(http, romashka, "olya", role="operator")
    viewer = await signed_in(Browser.open(str(http.base_url)), romashka, email=operator.email, password=STAFF_PASSWORD)
    try:
        shown = await viewer.get(path)
        assert shown.status_code == 200 and EN("settings.read_only") in shown.text
        assert "<fieldset disabled>" in shown.text and f">{RU('common.save')}</button>" not in shown.text
        assert (await viewer.submit(path, path, {**fields, "name": "Viewer"})).status_code == 403
    finally:
        await viewer.close()

    # A manager's role has no settings rights: neither the page nor the post.
    manager = await manager_of(http, browsers[2], romashka)
    assert (await manager.get(path)).status_code == 403
    assert f'href="/{romashka.slug}/admin/settings"' not in (await manager.get(f"/{romashka.slug}/")).text
    posted = await manager.submit(f"/{romashka.slug}/", path, {**fields, "name": "Manager"})
    assert (
        posted.status_code == 403 and EN("error.forbidden") in posted.text
    )  # the error page follows the browser's language
    assert (await api(http, romashka, "/api/v1/settings/company"))["name"] == "Ромашка"

    # On record, from the console.
    entries = await api(http, romashka, "/api/v1/audit?action=settings.company_updated")
    assert entries["items"][0]["channel"] == "console"
    assert entries["items"][-1]["changes"]["timezone"] == ["Europe/Moscow", "Asia/Yekaterinburg"]
    assert (await api(http, lyutik, "/api/v1/audit?action=settings.company_updated"))["items"] == []


# ---------------------------------------------------------------- call outcomes and task types


async def test_call_outcomes_are_added_moved_and_removed_as_one_list(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/outcomes"
    before = await api(http, romashka, "/api/v1/settings/call-outcomes")
    keys = [outcome["key"] for outcome in before]
    count = len(keys)

    page = await admin.get(path)
    assert page.status_code == 200 and RU("settings.outcomes.title") in page.text
    assert all(f'name="key.{index}" value="{key}"' in page.text for index, key in enumerate(keys))

    # A new entry in the empty row, saved with the rest.
    added = await post_page_form(
        admin,
        path,
        {f"key.{count}": "sent_offer", f"ru.{count}": "Отправили КП", f"en.{count}": "Offer sent", "op": "save"},
    )
    assert added.status_code == 303
    after = await api(http, romashka, "/api/v1/settings/call-outcomes")
    assert [outcome["key"] for outcome in after] == [*keys, "sent_offer"]
    assert after[-1] == {
        "key": "sent_offer",
        "names": {"ru": "Отправили КП", "en": "Offer sent"},
        "requires_next_step": False,
    }

    # The audit log shows the entry that came, not the whole list twice.
    log = await admin.get(f"/{romashka.slug}/admin/audit", params={"action": "settings.call_outcomes_updated"})
    assert '<code>call_outcomes[sent_offer]</code></th><td class="old">—</td>' in log.text

    # Up moves it one place; delete removes the first entry; names typed meanwhile are kept.
    moved = await post_page_form(admin, path, {"op": f"up:{count}", "ru.0": "Дозвонились!"})
    assert moved.status_code == 303
    after = await api(http, romashka, "/api/v1/settings/call-outcomes")
    assert [outcome["key"] for outcome in after] == [*keys[:-1], "sent_offer", keys[-1]]
    assert after[0]["names"]["ru"] == "Дозвонились!"
    removed = await post_page_form(admin, path, {"op": "delete:0"})
    assert removed.status_code == 303
    assert (await api(http, romashka, "/api/v1/settings/call-outcomes"))[0]["key"] == keys[1]

    # A bad new key and an empty name come back next to their fields.
    total = len(await api(http, romashka, "/api/v1/settings/call-outcomes"))
    refused = await post_page_form(admin, path, {f"key.{total}": "Bad Key", f"ru.{total}": "Плохо", "ru.0": ""})
    assert refused.status_code == 422
    assert f'id="f-key-{total}-error"' in refused.text and 'id="f-ru-0-error"' in refused.text
    assert 'value="Bad Key"' in refused.text

    # A form shown before someone else saved does not undo their change.
    stale_page = await admin.get(path)
    await post_page_form(admin, path, {"ru.0": "Свежее имя"})
    stale = await admin.client.post(path, data={**form_fields(stale_page.text), "ru.0": "Старое"})
    assert stale.status_code == 409 and RU("settings.stale") in text_of(stale)
    assert (await api(http, romashka, "/api/v1/settings/call-outcomes"))[0]["names"]["ru"] == "Свежее имя"

    # The other company's list is its own.
    assert await api(http, lyutik, "/api/v1/settings/call-outcomes") == before
    audit = await api(http, romashka, "/api/v1/audit?action=settings.call_outcomes_updated")
    assert len(audit["items"]) == 4 and {item["channel"] for item in audit["items"]} == {"console"}
    assert (await api(http, lyutik, "/api/v1/audit?action=settings.call_outcomes_updated"))["items"] == []

    manager = await manager_of(http, browsers[1], romashka)
    assert (await manager.get(path)).status_code == 403
    assert (await manager.submit(f"/{romashka.slug}/", path, {"count": "0", "op": "save"})).status_code == 403
    assert (await admin.client.post(path, data={"count": "0", "op": "save"})).status_code == 403  # no token


async def test_task_types_page_edits_the_list_tasks_are_checked_against(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/task-types"
    page = await admin.get(path)
    assert page.status_code == 200 and 'value="call"' in page.text
    count = int(re.search(r'name="count" value="(\d+)"', page.text).group(1)) - 1  # type: ignore[union-attr]

    saved = await post_page_form(
        admin, path, {f"key.{count}": "visit", f"ru.{count}": "Выезд", f"en.{count}": "Site visit", "op": "save"}
    )
    assert saved.status_code == 303
    assert 'value="visit"' in (await admin.get(path)).text
    me = await my_id(http, romashka.auth)
    task = {
        "title": "Выехать на объект",
        "task_type": "visit",
        "assignee_id": me,
        "due_at": "2030-01-01T10:00:00+03:00",
    }
    assert (await http.post("/api/v1/tasks", json=task, headers=romashka.auth)).status_code == 201
    # The other company has no such type.
    other = await http.post(
        "/api/v1/tasks", json={**task, "assignee_id": await my_id(http, lyutik.auth)}, headers=lyutik.auth
    )
    assert other.status_code == 422 and "task_type" in other.text

    duplicate = await post_page_form(
        admin, path, {f"key.{count + 1}": "visit", f"ru.{count + 1}": "Ещё", f"en.{count + 1}": "More"}
    )
    assert duplicate.status_code == 422 and "repeats an earlier task type" in duplicate.text
    audit = await api(http, romashka, "/api/v1/audit?action=settings.task_types_updated")
    assert audit["items"][0]["changes"]["task_types"][1][-1]["key"] == "visit"


# ---------------------------------------------------------------- pipelines


async def test_pipelines_and_stages_follow_the_api_rules(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/pipelines"
    lyutik_before = await api(http, lyutik, "/api/v1/pipelines")

    def sales(pipelines: dict[str, Any]) -> dict[str, Any]:
        return next(p for p in pipelines["items"] if p["key"] == "sales")

    pipeline = sales(await api(http, romashka, "/api/v1/pipelines"))
    pid, stages = pipeline["id"], pipeline["stages"]
    page = await admin.get(path)
    assert page.status_code == 200 and f'id="stage-{stages[0]["id"]}"' in page.text

    # Add an open stage at its place (before the closed ones).
    added = await admin.submit(
        path,
        f"{path}/{pid}/stages",
        {"key": "demo", "ru": "Демонстрация", "en": "Demo", "probability": "40", "kind": "open"},
    )
    assert added.status_code == 303
    stages = sales(await api(http, romashka, "/api/v1/pipelines"))["stages"]
    demo = next(stage for stage in stages if stage["key"] == "demo")
    assert stages[demo["position"] + 1]["kind"] != "open"

    # Rename it and move it up one place.
    renamed = await admin.submit(
        path,
        f"{path}/{pid}/stages/{demo['id']}",
        {
            "ru": "Демо",
            "en": "Demo call",
            "probability": "45",
            "kind": "open",
            "op": "save",
            "position": str(demo["position"]),
        },
    )
    assert renamed.status_code == 303
    moved = await admin.submit(
        path,
        f"{path}/{pid}/stages/{demo['id']}",
        {
            "ru": "Демо",
            "en": "Demo call",
            "probability": "45",
            "kind": "open",
            "op": "up",
            "position": str(demo["position"]),
        },
    )
    assert moved.status_code == 303
    stages = sales(await api(http, romashka, "/api/v1/pipelines"))["stages"]
    now = next(stage for stage in stages if stage["key"] == "demo")
    assert now["names"] == {"ru": "Демо", "en": "Demo call"} and now["probability"] == 45
    assert now["position"] == demo["position"] - 1 and [s["position"] for s in stages] == list(range(len(stages)))

    # A stage deals sit in is not deleted; the reason is shown on its form.
    first = stages[0]
    client_id = await seed_client(romashka, "ООО Вектор")
    await seed_deal(romashka, client_id, responsible_id=await my_id(http, romashka.auth))
    busy = await admin.submit(path, f"{path}/{pid}/stages/{first['id']}", {"op": "delete"})
    assert busy.status_code == 409 and "move them to another stage first" in busy.text
    # Nor the last won stage of a pipeline.
    won = next(stage for stage in stages if stage["kind"] == "won")
    last_won = await admin.submit(path, f"{path}/{pid}/stages/{won['id']}", {"op": "delete"})
    assert last_won.status_code == 422 and "last won stage" in last_won.text
    # A bad probability is named.
    bad = await admin.submit(
        path,
        f"{path}/{pid}/stages/{now['id']}",
        {"ru": "Демо", "en": "Demo", "probability": "abc", "kind": "open", "op": "save"},
    )
    assert bad.status_code == 422 and RU("settings.pipelines.number") in text_of(bad)
    assert 'id="s{}-probability-error"'.format(now["id"]) in bad.text
    # An empty stage goes.
    gone = await admin.submit(path, f"{path}/{pid}/stages/{now['id']}", {"op": "delete"})
    assert gone.status_code == 303
    assert "demo" not in [s["key"] for s in sales(await api(http, romashka, "/api/v1/pipelines"))["stages"]]

    # A new pipeline starts with an open, a won and a lost stage.
    created = await admin.submit(path, path, {"key": "rentals", "ru": "Аренда", "en": "Rentals"})
    assert created.status_code == 303
    rentals = next(p for p in (await api(http, romashka, "/api/v1/pipelines"))["items"] if p["key"] == "rentals")
    assert [stage["kind"] for stage in rentals["stages"]] == ["open", "won", "lost"]
    taken = await admin.submit(path, path, {"key": "rentals", "ru": "Аренда", "en": "Rentals"})
    assert taken.status_code == 409 and "is used by another pipeline" in taken.text
    # Pipelines reorder too.
    up = await admin.submit(
        path, f"{path}/{rentals['id']}", {"op": "up", "position": str(rentals["position"]), "ru": "", "en": ""}
    )
    assert up.status_code == 303
    order = [p["key"] for p in (await api(http, romashka, "/api/v1/pipelines"))["items"]]
    assert order.index("rentals") == rentals["position"] - 1

    # The other company's pipelines are untouched; its stage ids are not reachable here.
    assert await api(http, lyutik, "/api/v1/pipelines") == lyutik_before
    assert (await admin.submit(path, f"{path}/999999/stages/1", {"op": "delete"})).status_code == 404
    new_stage = {"key": "x", "ru": "x", "en": "x", "probability": "1", "kind": "open"}
    assert (await admin.submit(path, f"{path}/999999/stages", new_stage)).status_code == 404

    manager = await manager_of(http, browsers[1], romashka)
    assert (await manager.get(path)).status_code == 403
    assert (await manager.submit(f"/{romashka.slug}/", path, {"key": "x", "ru": "x", "en": "x"})).status_code == 403
    assert (await admin.client.post(path, data={"key": "nope", "ru": "x", "en": "x"})).status_code == 403


# ---------------------------------------------------------------- custom fields


async def test_custom_fields_editor_keeps_the_api_rules_and_the_edition_gate(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    small = await make_tenant(edition="start")
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/fields"
    lyutik_before = await api(http, lyutik, "/api/v1/settings/custom-fields")
    page = await admin.get(path)
    assert page.status_code == 200 and RU("settings.fields.title") in page.text
    count = int(re.search(r'name="count" value="(\d+)"', page.text).group(1)) - 1  # type: ignore[union-attr]

    new = {
        f"entity.{count}": "deal",
        f"key.{count}": "delivery",
        f"ru.{count}": "Доставка",
        f"en.{count}": "Delivery",
        f"type.{count}": "choice",
        f"required.{count}": "1",
        f"choices.{count}": "pickup | Самовывоз | Pickup\ncourier | Курьер | Courier\n",
        "op": "save",
    }
    bad = await post_page_form(admin, path, {**new, f"choices.{count}": "pickup | Самовывоз\nBad Key | Плохо"})
    assert bad.status_code == 422
    assert RU("settings.fields.line", line=2, detail="must be a new key of a-z, 0-9 and _") in text_of(bad)
    assert f'id="f-choices-{count}-error"' in bad.text

    assert (await post_page_form(admin, path, new)).status_code == 303
    fields = await api(http, romashka, "/api/v1/settings/custom-fields")
    delivery = next(field for field in fields if field["key"] == "delivery")
    assert delivery["entity"] == "deal" and delivery["required"] is True
    assert [choice["key"] for choice in delivery["choices"]] == ["pickup", "courier"]
    assert delivery["choices"][1]["names"] == {"ru": "Курьер", "en": "Courier"}

    # Choice lines come back as they were typed; a text field may not have choices.
    page = await admin.get(path)
    index = [field["key"] for field in fields].index("delivery")
    assert "courier | Курьер | Courier" in text_of(page)
    wrong = await post_page_form(admin, path, {f"type.{index}": "text"})
    assert wrong.status_code == 422 and "fields have choices" in text_of(wrong)

    assert await api(http, lyutik, "/api/v1/settings/custom-fields") == lyutik_before
    # The edition without custom fields: the 402 page, and no tab to it.
    small_admin = await signed_in(browsers[1], small)
    assert (await small_admin.get(f"/{small.slug}/admin/settings/fields")).status_code == 402
    assert "/admin/settings/fields" not in (await small_admin.get(f"/{small.slug}/admin/settings")).text

    manager = await manager_of(http, browsers[2], romashka)
    assert (await manager.get(path)).status_code == 403


# ---------------------------------------------------------------- mail


async def test_mail_sender_is_set_checked_and_reset(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    admin = await signed_in(browsers[0], romashka)
    path = f"/{romashka.slug}/admin/settings/mail"
    default = await api(http, lyutik, "/api/v1/settings/mail")
    assert (await admin.get(path)).status_code == 200

    refused = await admin.submit(
        path, path, {"from_name": "Ромашка", "from_address": "not an address", "rate_per_minute": "0"}
    )
    assert refused.status_code == 422
    assert 'id="f-from_address-error"' in refused.text and 'id="f-rate_per_minute-error"' in refused.text
    done = await admin.submit(
        path, path, {"from_name": "Ромашка", "from_address": "Hello@Romashka.example", "rate_per_minute": "120"}
    )
    assert done.status_code == 303
    mail = await api(http, romashka, "/api/v1/settings/mail")
    assert (mail["from_name"], mail["from_address"], mail["rate_per_minute"]) == (
        "Ромашка",
        "hello@romashka.example",
        120,
    )
    assert await api(http, lyutik, "/api/v1/settings/mail") == default

    cleared = await admin.submit(path, path, {"from_name": "", "from_address": "", "rate_per_minute": ""})
    assert cleared.status_code == 303
    assert await api(http, romashka, "/api/v1/settings/mail") == default

    manager = await manager_of(http, browsers[1], romashka)
    assert (await manager.get(path)).status_code == 403
    assert (await manager.submit(f"/{romashka.slug}/", path, {"from_name": "x"})).status_code == 403


# ---------------------------------------------------------------- plan


async def test_plan_page_shows_the_edition_its_usage_and_the_way_up(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(edition="start", company="Ромашка")
    lyutik = await make_tenant(edition="enterprise", company="Лютик")
    await add_staff(http, romashka, "anna", role="manager")
    for name in ("ООО Альфа", "ООО Бета"):
        await seed_client(romashka, name)
    admin = await signed_in(browsers[0], romashka)
    page = await admin.get(f"/{romashka.slug}/admin/billing")
    assert page.status_code == 200
    body = text_of(page)
    assert RU("billing.current", name="Старт") in body
    assert (
        RU("billing.module.calls") in body and RU("billing.module.mailings") not in body.split(RU("billing.upgrade"))[0]
    )
    # Two of three seats, two of a thousand clients; mailings are not in this plan.
    assert re.search(r'<meter id="meter-users"[^>]*max="3" value="2"', page.text)
    assert RU("billing.used", used="2", limit="3") in body
    assert re.search(r'<meter id="meter-clients"[^>]*max="1000" value="2"', page.text)
    assert 'id="meter-mailings_per_month"' not in page.text
    # The way up: Business, Enterprise and the estate agency plan, paid for later.
    upgrade = body.split(RU("billing.upgrade"))[1]
    assert all(name in upgrade for name in ("Бизнес", "Корпоративный", "Агентство недвижимости"))
    assert RU("billing.payment_soon") in upgrade and "disabled" in page.text

    # The other company sees its own plan and usage, and is on the fullest plan.
    their = await signed_in(browsers[1], lyutik)
    theirs = text_of(await their.get(f"/{lyutik.slug}/admin/billing"))
    assert RU("billing.current", name="Корпоративный") in theirs and RU("billing.top") in theirs
    assert RU("billing.used_unlimited", used="1") in theirs  # one user, no limit

    # A full quota says so.
    await add_staff(http, romashka, "boris", role="manager")
    full = text_of(await admin.get(f"/{romashka.slug}/admin/billing"))
    assert RU("billing.used", used="3", limit="3") in full and RU("billing.full") in full

    manager = await manager_of(http, browsers[2], romashka)
    assert (await manager.get(f"/{romashka.slug}/admin/billing")).status_code == 403


# ---------------------------------------------------------------- audit log


async def test_audit_log_filters_pages_shows_changes_and_exports(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(edition="enterprise", company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    admin = await signed_in(browsers[0], romashka)
    other = await signed_in(browsers[1], lyutik)
    settings_path = f"/{romashka.slug}/admin/settings"
    fields = {"name": "Ромашка", "timezone": "Asia/Novosibirsk", "locale": "ru", "phone_region": "RU"}
    assert (await admin.submit(settings_path, settings_path, fields)).status_code == 303
    patched = await http.patch(
        "/api/v1/roles/operator", json={"rights": {"clients": {"read": "all"}}}, headers=romashka.auth
    )
    assert patched.status_code == 200, patched.text
    path = f"/{romashka.slug}/admin/audit"

    page = await admin.get(path)
    assert page.status_code == 200
    body = text_of(page)
    assert "settings.company_updated" in body and "role.updated" in body and "tenant.created" in body
    # Field-level changes, old → new: the time zone; inside the role's rights, per entity.
    assert re.search(
        r"<code>timezone</code></th><td class=\"old\">Europe/Moscow</td><td class=\"new\">Asia/Novosibirsk</td>",
        page.text,
    )
    assert "<code>rights.clients</code>" in page.text
    # Times on the admin's clock (Europe/Moscow is the user's zone, not the company's new one).
    assert "<time datetime=" in page.text
    # The other company's log is its own.
    theirs = text_of(await other.get(f"/{lyutik.slug}/admin/audit"))
    assert "settings.company_updated</strong>" not in theirs and "role.updated</strong>" not in theirs
    assert "Asia/Novosibirsk" not in theirs

    # Filters: by action; by who acted; by a date range; bad input named.
    only = text_of(await admin.get(path, params={"action": "role.updated"}))
    assert (
        "role.updated" in only.split('id="audit-page"')[1].split("</datalist>")[1]
        and "settings.company_updated</strong>" not in only
    )
    me = await my_id(http, romashka.auth)
    by_me = await admin.get(path, params={"actor_id": str(me), "entity": "setting"})
    assert (
        by_me.status_code == 200
        and "settings.company_updated</strong>" in by_me.text
        and "tenant.created</strong>" not in by_me.text
    )
    none = await admin.get(path, params={"date_from": "2001-01-01", "date_to": "2001-01-02"})
    assert RU("audit.empty") in text_of(none)
    bad = await admin.get(path, params={"date_from": "yesterday", "actor_id": "x"})
    assert bad.status_code == 422 and 'id="f-date_from-error"' in bad.text and 'id="f-actor_id-error"' in bad.text

    # Keyset pages: two rows a page, no row twice, older ones after.
    seen: list[str] = []
    url: str | None = f"{path}?limit=2"
    while url:
        step = await admin.get(url)
        assert step.status_code == 200
        seen += re.findall(r"<p class=\"meta\"><small>#(\d+)", step.text)
        found = re.search(r'<a href="([^"]+)" rel="next"', step.text)
        url = html.unescape(found.group(1)) if found else None
    assert len(seen) == len(set(seen)) >= 5 and [int(i) for i in seen] == sorted((int(i) for i in seen), reverse=True)

    # Export: the filtered rows as CSV, itself on record.
    export = await admin.get(f"{path}/export.csv", params={"action": "settings.company_updated"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][0] == "ID" and len(rows) == 2 and rows[1][5] == "settings.company_updated"
    assert "Asia/Novosibirsk" in rows[1][8]
    exported = await api(http, romashka, "/api/v1/audit?action=audit.exported")
    assert exported["items"][0]["channel"] == "console"
    assert exported["items"][0]["changes"] == {"action": [None, "settings.company_updated"]}
    # The same through the API.
    through_api = await http.get("/api/v1/audit/export.csv", headers=romashka.auth, params={"entity": "role"})
    assert (
        through_api.status_code == 200
        and "role.updated" in through_api.text
        and "tenant.created" not in through_api.text
    )
    # The other company's plan has no export: no button, a 402 page (and 402 on the API).
    assert RU("audit.export") not in theirs and RU("audit.export_module") in theirs
    assert (await other.get(f"/{lyutik.slug}/admin/audit/export.csv")).status_code == 402
    assert (await http.get("/api/v1/audit/export.csv", headers=lyutik.auth)).status_code == 402

    # A role without audit rights sees neither.
    manager = await manager_of(http, browsers[2], romashka)
    assert (await manager.get(path)).status_code == 403
    assert (await manager.get(f"{path}/export.csv")).status_code == 403
    assert f'href="/{romashka.slug}/admin/audit"' not in (await manager.get(f"/{romashka.slug}/")).text
