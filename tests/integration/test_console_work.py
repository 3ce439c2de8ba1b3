"""The console's staff work pages: tasks and the planner, the import wizard, mailings and
connecting Telegram. Real HTTP against the app (a browser-like client keeping cookies and
posting each page's CSRF token), real PostgreSQL, two companies in every test — and a role
without the right sees no button and gets the 403 page when it posts anyway."""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from crm.admin_ui.texts import Texts
from crm.bot.links import Redeemed, redeem_link_code
from crm.platform.app import create_app
from crm.platform.mail import install_mail
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.timers import run_due
from crm.settings import Secret, Settings, TelegramSettings, load_settings
from tests.conftest import STAFF_PASSWORD, SignedUpTenant, Staff, TenantFactory, add_staff
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.integration.console_support import Browser, csrf_in
from tests.integration.helpers import my_id, tenant_of
from tests.support import serve

RU, EN = Texts("ru"), Texts("en")
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
async def browsers(base_url: str) -> AsyncIterator[list[Browser]]:
    """Three browsers of their own (cookies, client address)."""
    opened = [Browser.open(base_url) for _ in range(3)]
    try:
        yield opened
    finally:
        for browser in opened:
            await browser.close()


async def signed_in(browser: Browser, company: SignedUpTenant, staff: Staff | None = None) -> Browser:
    response = await browser.sign_in(company, email=staff.email if staff else None,
                                     password=STAFF_PASSWORD if staff else None)  # fmt: skip
    assert response.status_code == 303, response.text
    return browser


async def api_task(http: httpx.AsyncClient, auth: dict[str, str], title: str, due_at: datetime, **extra: Any) -> int:
    response = await http.post(
        "/api/v1/tasks", json={"title": title, "due_at": due_at.isoformat(), **extra}, headers=auth
    )
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


async def htmx_post(browser: Browser, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    """What htmx sends: the token in the header the page's <body> names, and HX-Request."""
    token = csrf_in((await browser.get(page)).text)
    return await browser.client.post(action, data=fields, headers={"HX-Request": "true", "X-CSRF-Token": token})


async def set_rights(http: httpx.AsyncClient, company: SignedUpTenant, role: str, rights: dict[str, Any]) -> None:
    response = await http.patch(f"/api/v1/roles/{role}", json={"rights": rights}, headers=company.auth)
    assert response.status_code == 200, response.text


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


# ---------------------------------------------------------------- tasks


async def test_my_tasks_with_views_done_and_a_new_task(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    now = datetime.now(UTC)
    overdue = await api_task(http, romashka.auth, "Позвонить в «Рога и копыта»", now - timedelta(days=2))
    soon = await api_task(http, romashka.auth, "Отправить <b>счёт</b>", now + timedelta(days=3), priority="high")
    for number in (1, 2):
        await api_task(http, lyutik.auth, f"Ранняя задача Лютика {number}", now + timedelta(days=30))
    # Ids are per company: this one has no task of that id in Ромашка.
    theirs = await api_task(http, lyutik.auth, "Задача Лютика", now + timedelta(hours=2))
    browser, other, _ = browsers
    await signed_in(browser, romashka)
    await signed_in(other, lyutik)

    page = await browser.get(f"/{romashka.slug}/tasks")
    assert page.status_code == 200
    shown = text_of(page)
    assert RU("tasks.title") in shown and "Позвонить в «Рога и копыта»" in shown
    assert "Отправить <b>счёт</b>" in shown and "<b>счёт</b>" not in page.text  # escaped, never markup
    assert "Задача Лютика" not in shown
    assert RU("tasks.priority.high") in shown and f'id="task-{overdue}"' in page.text
    assert 'hx-post="/' in page.text and '<label for="task-title">' in page.text
    # The overdue view: only the overdue task; a made-up view is refused naming the parameter.
    late = text_of(await browser.get(f"/{romashka.slug}/tasks?view=overdue"))
    assert "Рога и копыта" in late and "счёт" not in late
    bogus = await browser.get(f"/{romashka.slug}/tasks?view=yesterday")
    assert bogus.status_code == 422 and RU("work.bad_parameter", field="view") in text_of(bogus)
    # The other company's page lists its own task only.
    theirs_page = text_of(await other.get(f"/{lyutik.slug}/tasks"))
    assert "Задача Лютика" in theirs_page and "Рога и копыта" not in theirs_page

    # Done without JavaScript: a plain form post, then back to the list.
    done = await browser.submit(
        f"/{romashka.slug}/tasks", f"/{romashka.slug}/tasks/{overdue}/complete", {"view": "overdue"}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/{romashka.slug}/tasks?view=overdue&done={overdue}"
    task = (await http.get(f"/api/v1/tasks/{overdue}", headers=romashka.auth)).json()
    assert task["status"] == "done"
    # Done with htmx: the row comes back marked done.
    row = await htmx_post(browser, f"/{romashka.slug}/tasks", f"/{romashka.slug}/tasks/{soon}/complete", {})
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<li id="task-{soon}"')
    assert "done" in row.text and RU("tasks.done_mark") in row.text
    # Another company's task: not found, and untouched.
    stolen = await browser.submit(f"/{romashka.slug}/tasks", f"/{romashka.slug}/tasks/{theirs}/complete", {})
    assert stolen.status_code == 404
    assert (await http.get(f"/api/v1/tasks/{theirs}", headers=lyutik.auth)).json()["status"] == "open"
    # Without the page's token: refused.
    forged = await browser.client.post(f"/{lyutik.slug}/tasks/{theirs}/complete")
    assert forged.status_code == 403
    forged = await browser.client.post(f"/{romashka.slug}/tasks", data={"title": "x", "due_at": "2030-01-01T10:00"})
    assert forged.status_code == 403

    # A new task: every bad field named next to it, then saved on the user's clock.
    bad = await browser.submit(f"/{romashka.slug}/tasks", f"/{romashka.slug}/tasks", {"title": " ", "due_at": "soon"})
    assert bad.status_code == 422
    assert RU("tasks.error.title") in text_of(bad) and RU("tasks.error.due_at") in text_of(bad)
    assert 'aria-describedby="task-title-error"' in bad.text and 'aria-describedby="task-due_at-error"' in bad.text
    created = await browser.submit(
        f"/{romashka.slug}/tasks",
        f"/{romashka.slug}/tasks",
        {"title": "Встреча с клиентом", "due_at": "2030-05-06T15:30", "task_type": "meeting", "priority": "low"},
    )
    assert created.status_code == 303 and "created=1" in created.headers["location"]
    listed = (await http.get("/api/v1/tasks", headers=romashka.auth, params={"limit": "200"})).json()["items"]
    [meeting] = [item for item in listed if item["title"] == "Встреча с клиентом"]
    assert datetime.fromisoformat(meeting["due_at"]) == datetime(2030, 5, 6, 15, 30, tzinfo=MOSCOW)
    assert (meeting["task_type"], meeting["priority"]) == ("meeting", "low")
    assert all(item["title"] != "Встреча с клиентом" for item in
               (await http.get("/api/v1/tasks", headers=lyutik.auth)).json()["items"])  # fmt: skip
    audit = (await http.get("/api/v1/audit", headers=romashka.auth, params={"entity": "task"})).json()["items"]
    channels = {(row["action"], str(row["entity_id"])): row["channel"] for row in audit}
    assert channels[("task.completed", str(overdue))] == channels[("task.created", str(meeting["id"]))] == "console"


async def test_a_role_without_the_right_sees_no_button_and_is_refused(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    operator = await add_staff(http, romashka, "oleg", role="operator")
    reader = await add_staff(http, lyutik, "rita", role="operator")
    # Ромашка's operators may read and create their tasks but not change them; Лютик's keep theirs.
    await set_rights(http, romashka, "operator", {"tasks": {"read": "own", "create": "own"}})
    task = await api_task(http, operator.auth, "Перезвонить", datetime.now(UTC) + timedelta(hours=3))
    browser, other, _ = browsers
    await signed_in(browser, romashka, operator)
    await signed_in(other, lyutik, reader)

    page = await browser.get(f"/{romashka.slug}/tasks")
    assert page.status_code == 200 and "Перезвонить" in page.text
    assert "/complete" not in page.text  # no Done button
    refused = await browser.submit(f"/{romashka.slug}/tasks", f"/{romashka.slug}/tasks/{task}/complete", {})
    assert refused.status_code == 403 and EN("error.forbidden") in text_of(refused)
    assert (await http.get(f"/api/v1/tasks/{task}", headers=operator.auth)).json()["status"] == "open"
    # Лютик's operator, whose role is untouched, has the button on their own list.
    await api_task(http, reader.auth, "Своя задача", datetime.now(UTC) + timedelta(hours=3))
    assert "/complete" in (await other.get(f"/{lyutik.slug}/tasks")).text

    # No tasks right at all: the pages answer 403, and the menu does not offer them.
    await set_rights(http, romashka, "operator", {"clients": {"read": "own"}})
    assert (await browser.get(f"/{romashka.slug}/tasks")).status_code == 403
    assert (await browser.get(f"/{romashka.slug}/planner")).status_code == 403
    home = await browser.get(f"/{romashka.slug}/")
    assert f'href="/{romashka.slug}/tasks"' not in home.text
    assert f'href="/{lyutik.slug}/tasks"' in (await other.get(f"/{lyutik.slug}/")).text


# ---------------------------------------------------------------- planner


async def test_the_planner_shows_three_weeks_of_one_employee_the_role_may_see(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    anna = await add_staff(http, romashka, "anna", role="manager")
    admin_id = await my_id(http, romashka.auth)
    # Anna's week starting Monday 2030-03-04 (her clock is UTC): one done, one open, one next week.
    first = await api_task(http, anna.auth, "Anna call", datetime(2030, 3, 4, 10, 0, tzinfo=UTC))
    await api_task(http, anna.auth, "Anna meeting", datetime(2030, 3, 6, 14, 0, tzinfo=UTC))
    await api_task(http, anna.auth, "Anna next week", datetime(2030, 3, 12, 9, 0, tzinfo=UTC))
    await api_task(http, anna.auth, "Anna far away", datetime(2030, 4, 20, 9, 0, tzinfo=UTC))
    assert (await http.post(f"/api/v1/tasks/{first}/complete", headers=anna.auth)).status_code == 200
    await api_task(http, romashka.auth, "Admin's own", datetime(2030, 3, 5, 9, 0, tzinfo=UTC))
    await api_task(http, lyutik.auth, "Lyutik's task", datetime(2030, 3, 5, 9, 0, tzinfo=UTC))
    admin, manager, other = browsers
    await signed_in(admin, romashka)
    await signed_in(manager, romashka, anna)
    await signed_in(other, lyutik)

    page = await admin.get(f"/{romashka.slug}/planner?user={anna.id}&start=2030-03-06")
    assert page.status_code == 200
    shown = text_of(page)
    assert "Anna call" in shown and "Anna meeting" in shown and "Anna next week" in shown
    assert "Anna far away" not in shown and "Admin's own" not in shown and "Lyutik's task" not in shown
    # A Wednesday start shows its whole week; each week has a progress bar of done against due.
    assert RU("planner.week", first="04.03", last="10.03.2030") in shown
    assert (
        RU("planner.progress", done=1, total=2) in shown
        and '<progress id="week-progress-1" value="1" max="2">' in page.text
    )
    assert RU("planner.progress", done=0, total=1) in shown  # the second week
    assert len(re.findall(r"<progress ", page.text)) == 3
    # The selector offers the employees the admin may see; the admin's own planner is the default.
    assert f'<option value="{anna.id}" selected>' in page.text and f'<option value="{admin_id}"' in page.text
    mine = text_of(await admin.get(f"/{romashka.slug}/planner?start=2030-03-04"))
    assert "Admin's own" in mine and "Anna call" not in mine

    # A manager sees only themselves: no one else's planner, nor anyone in the selector.
    own = await manager.get(f"/{romashka.slug}/planner?start=2030-03-04")
    assert own.status_code == 200 and "Anna call" in own.text and f'<option value="{admin_id}"' not in own.text
    assert (await manager.get(f"/{romashka.slug}/planner?user={admin_id}")).status_code == 404
    # The other company's admin cannot open Ромашка's employee by id.
    assert (await other.get(f"/{lyutik.slug}/planner?user={anna.id}")).status_code == 404
    theirs = text_of(await other.get(f"/{lyutik.slug}/planner?start=2030-03-04"))
    assert "Lyutik's task" in theirs and "Anna" not in theirs
    # A date that is not one is refused naming the parameter.
    bad = await admin.get(f"/{romashka.slug}/planner?start=2030-02-30")
    assert bad.status_code == 422 and RU("work.bad_parameter", field="start") in text_of(bad)


# ---------------------------------------------------------------- import


CLIENTS_CSV = (
    "Название;Телефон;E-mail;Комментарий\r\n"
    'ООО "Ромашка-Опт";8 (912) 345-67-89;info@romashka-opt.ru;первый\r\n'
    "Пётр Иванов;+7 903 111-22-33;petr@example.ru;\r\n"
    "Без телефона;не номер;;\r\n"
).encode("cp1251")


async def upload(browser: Browser, slug: str, content: bytes, **fields: str) -> httpx.Response:
    token = csrf_in((await browser.get(f"/{slug}/import")).text)
    return await browser.client.post(
        f"/{slug}/import", data={"_csrf": token, **fields}, files={"file": ("клиенты.csv", content, "text/csv")}
    )


async def finished_import(browser: Browser, slug: str, import_id: int) -> str:
    """The progress fragment once the import is over (it then stops asking to be polled)."""
    for _ in range(300):
        fragment = await browser.get(f"/{slug}/import/{import_id}/progress", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        if "hx-trigger" not in fragment.text:
            return text_of(fragment)
        assert 'hx-trigger="every 1s"' in fragment.text and RU("work.refresh") in fragment.text
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def test_the_import_wizard_uploads_maps_starts_and_shows_progress(
    make_tenant: TenantFactory, http: httpx.AsyncClient, browsers: list[Browser]
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    small = await make_tenant(company="Малыш", edition="start")
    manager = await add_staff(http, romashka, "maria", role="manager")
    admin, other, staff = browsers
    await signed_in(admin, romashka)
    await signed_in(other, lyutik)

    page = await admin.get(f"/{romashka.slug}/import")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert '<label for="import-file">' in page.text and RU("import.rule.update") in text_of(page)
    # A file that is no file: refused at the field.
    empty = await upload(admin, romashka.slug, b"")
    assert empty.status_code == 422 and RU("import.error.file") in text_of(empty)
    assert 'aria-describedby="import-file-error"' in empty.text
    # Without the page's token: refused.
    forged = await admin.client.post(
        f"/{romashka.slug}/import", files={"file": ("c.csv", CLIENTS_CSV, "text/csv")}, data={"on_duplicate": "skip"}
    )
    assert forged.status_code == 403

    uploaded = await upload(admin, romashka.slug, CLIENTS_CSV)
    assert uploaded.status_code == 303
    mapping_path = uploaded.headers["location"]
    assert re.fullmatch(rf"/{romashka.slug}/import/drafts/\d+", mapping_path)
    draft_id = mapping_path.rsplit("/", 1)[1]
    mapping = await admin.get(mapping_path)
    assert mapping.status_code == 200
    shown = text_of(mapping)
    assert RU("import.mapping_title", filename="клиенты.csv") in shown and RU("import.mapping_intro", total=3) in shown
    # Detected from the Russian headers; the unknown column is left out; samples shown.
    assert re.search(r'name="column_0"[^>]*>.*?<option value="name" selected>', mapping.text, re.S)
    assert re.search(r'name="column_1"[^>]*>.*?<option value="phones" selected>', mapping.text, re.S)
    assert "selected" not in mapping.text.split('name="column_3">')[1].split("</select>")[0]
    assert 'ООО "Ромашка-Опт"' in shown
    # The draft is its author's alone: neither the other company nor the API sees it.
    assert (await other.get(f"/{lyutik.slug}/import/drafts/{draft_id}")).status_code == 404
    assert (await http.get("/api/v1/imports", headers=romashka.auth)).json()["items"] == []

    # Without a name column the import cannot start; the choice made stays on the page.
    no_name = await admin.submit(mapping_path, mapping_path, {"column_1": "phones", "on_duplicate": "skip"})
    assert no_name.status_code == 422 and RU("import.error.mapping") in text_of(no_name)
    assert re.search(r'name="column_1"[^>]*>.*?<option value="phones" selected>', no_name.text, re.S)
    started = await admin.submit(
        mapping_path,
        mapping_path,
        {"column_0": "name", "column_1": "phones", "column_2": "emails", "on_duplicate": "skip"},
    )
    assert started.status_code == 303
    job_path = started.headers["location"]
    import_id = int(job_path.rsplit("/", 1)[1])
    job_page = await admin.get(job_path)
    assert job_page.status_code == 200 and "<progress" in job_page.text
    done = await finished_import(admin, romashka.slug, import_id)
    assert RU("import.status.done") in done and RU("import.processed", processed=3, total=3) in done
    assert (
        f"{RU('import.created')}: <strong>2</strong>" in done and f"{RU('import.errors')}: <strong>1</strong>" in done
    )
    assert f"<td>4</td><td>{RU('import.field.phones')}</td>" in done  # the row's problem, named in the user's words
    clients = (await http.get("/api/v1/clients", headers=romashka.auth)).json()["items"]
    assert sorted(client["name"] for client in clients) == ['ООО "Ромашка-Опт"', "Пётр Иванов"]
    job = (await http.get(f"/api/v1/imports/{import_id}", headers=romashka.auth)).json()
    assert job["mapping"] == {"Название": "name", "Телефон": "phones", "E-mail": "emails"}
    audit = (await http.get("/api/v1/audit", headers=romashka.auth, params={"entity": "import"})).json()["items"]
    assert [(row["action"], row["channel"]) for row in audit] == [("import.started", "console")]
    # Listed on the wizard's first page; the draft is spent (starting it again finds nothing).
    assert f'href="/{romashka.slug}/import/{import_id}"' in (await admin.get(f"/{romashka.slug}/import")).text
    assert (await admin.get(mapping_path)).status_code == 404

    # The other company sees none of it.
    assert (await other.get(f"/{lyutik.slug}/import/{import_id}")).status_code == 404
    assert (await other.get(f"/{lyutik.slug}/import/{import_id}/progress")).status_code == 404
    assert f"/import/{import_id}" not in (await other.get(f"/{lyutik.slug}/import")).text
    assert (await http.get("/api/v1/clients", headers=lyutik.auth)).json()["items"] == []

    # A manager (no import rights) is refused the pages and the upload; the Start edition has no import.
    await signed_in(staff, romashka, manager)
    assert (await staff.get(f"/{romashka.slug}/import")).status_code == 403
    assert (await staff.get(job_path)).status_code == 403
    refused = await staff.client.post(
        f"/{romashka.slug}/import",
        data={"_csrf": csrf_in((await staff.get(f"/{romashka.slug}/tasks")).text)},
        files={"file": ("c.csv", CLIENTS_CSV, "text/csv")},
    )
    assert refused.status_code == 403
    await staff.submit(f"/{romashka.slug}/tasks", f"/{romashka.slug}/logout", {})
    await signed_in(staff, small)
    gated = await staff.get(f"/{small.slug}/import")
    # Error pages speak the user's language (the small company's admin: ru).
    assert gated.status_code == 402 and RU("error.module") in text_of(gated)


# ---------------------------------------------------------------- mailings


@contextlib.contextmanager
def mail_to(settings: Settings, server: FakeSmtp) -> Iterator[FakeSmtp]:
    """Mail of this process goes to ``server`` while the block runs."""
    env = {"CRM_DATA_DIR": str(settings.data_dir), "CRM_SECRET_KEY": "k" * 40, "CRM_SMTP_URL": server.url}
    install_mail(replace(settings, mail=replace(settings.mail, smtp=load_settings(env).mail.smtp)))
    try:
        yield server
    finally:
        install_mail(settings)


@pytest.fixture
def smtp(settings: Settings) -> Iterator[FakeSmtp]:
    with FakeSmtp() as server, mail_to(settings, server):
        yield server


async def seed_mail_client(company: SignedUpTenant, name: str, email: str, *, status: str, tags: list[str]) -> int:
    async with tenant_scope(await tenant_of(company)):
        client_id: int = await scope_connection().fetchval(
            "INSERT INTO clients (kind, name, phones, emails, tags, status)"
            " VALUES ('person', $1, '{}', ARRAY[$2]::varchar[], $3, $4) RETURNING id",
            name,
            email,
            tags,
            status,
        )
    return client_id


async def finished_mailing(browser: Browser, services: Services, slug: str, mailing_id: int) -> str:
    """The progress fragment once the mailing is over (it then stops asking to be polled)."""
    for _ in range(300):
        await run_due(services.db.pool, limit=10)
        fragment = await browser.get(f"/{slug}/mailings/{mailing_id}/progress", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        if "hx-trigger" not in fragment.text:
            return text_of(fragment)
        await asyncio.sleep(0.05)
    raise AssertionError("the mailing did not finish")


async def test_segments_templates_and_a_mailing_from_the_console(
    make_tenant: TenantFactory,
    http: httpx.AsyncClient,
    services: Services,
    smtp: FakeSmtp,
    browsers: list[Browser],
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    small = await make_tenant(company="Малыш", edition="start")
    for name, email, status in (("Anna Smirnova", "anna@example.org", "client"),
                                ("Boris Ivanov", "boris@example.org", "client"),
                                ("Vera Lead", "vera@example.org", "lead")):  # fmt: skip
        await seed_mail_client(romashka, name, email, status=status, tags=["vip"])
    await seed_mail_client(romashka, "Plain Client", "plain@example.org", status="client", tags=[])
    await seed_mail_client(lyutik, "Lyutik Vip", "lvip@example.org", status="client", tags=["vip"])
    admin, other, staff = browsers
    await signed_in(admin, romashka)
    await signed_in(other, lyutik)
    base = f"/{romashka.slug}/mailings"

    listing = await admin.get(base)
    assert listing.status_code == 200 and RU("mailings.empty") in text_of(listing)
    assert f'href="{base}/segments/new"' in listing.text and f'href="{base}/templates/new"' in listing.text

    # The segment builder: the count follows the filters (htmx), bad input is named at its field.
    builder = await admin.get(f"{base}/segments/new")
    assert builder.status_code == 200 and RU("mailings.count", recipients=4, clients=4) in text_of(builder)
    assert 'hx-post="' in builder.text and '<label for="segment-tags">' in builder.text
    vip_clients = {"statuses": "client", "tags": "VIP"}
    counted = await htmx_post(admin, f"{base}/segments/new", f"{base}/segments/count", vip_clients)
    assert counted.status_code == 200 and counted.text.lstrip().startswith('<output id="segment-count"')
    assert RU("mailings.count", recipients=2, clients=2) in text_of(counted)
    late = await admin.submit(f"{base}/segments/new", f"{base}/segments/count", {"last_contact_after": "31.02"})
    assert late.status_code == 422 and 'aria-describedby="segment-filters-last_contact_after-error"' in late.text
    unnamed = await admin.submit(f"{base}/segments/new", f"{base}/segments", {"name": " ", **vip_clients})
    assert unnamed.status_code == 422 and RU("mailings.error.name") in text_of(unnamed)
    assert 'value="client" checked' in unnamed.text  # what was ticked stays ticked
    saved = await admin.submit(f"{base}/segments/new", f"{base}/segments", {"name": "VIP-клиенты", **vip_clients})
    assert saved.status_code == 303
    segment_path = saved.headers["location"].split("?")[0]
    segment_id = int(segment_path.rsplit("/", 1)[1])
    segment = await admin.get(saved.headers["location"])
    assert RU("common.saved") in text_of(segment) and 'value="vip"' in segment.text
    assert RU("mailings.count", recipients=2, clients=2) in text_of(segment)

    # The template editor: the preview is rendered by the sandboxed service; errors go to their field.
    editor = f"{base}/templates/new"
    draft = {"name": "Весна", "subject": "Весна для {{ client.first_name }}", "text": "Dear {{ client.nmae }}"}
    wrong = await htmx_post(admin, editor, f"{base}/templates/preview", draft)
    assert wrong.status_code == 200
    assert re.search(r'id="template-text-error" hx-swap-oob="true">[^<]*client\.nmae', wrong.text)
    unsafe = await htmx_post(admin, editor, f"{base}/templates/preview", {**draft, "text": "{{ ''.__class__ }}"})
    assert 'id="template-text-error" hx-swap-oob="true"></small>' not in unsafe.text
    good = {**draft, "text": "{{ client.name }}, {{ company.name }} пишет вам.\n{{ unsubscribe_url }}"}
    shown = await htmx_post(admin, editor, f"{base}/templates/preview", good)
    assert "Весна для Anna" in text_of(shown) and "Anna Smirnova, Ромашка пишет вам." in text_of(shown)
    refused = await admin.submit(editor, f"{base}/templates", draft)
    assert refused.status_code == 422 and 'aria-describedby="template-text-error" aria-invalid="true"' in refused.text
    assert "Неизвестная подстановка «client.nmae»" in text_of(refused)
    created = await admin.submit(editor, f"{base}/templates", good)
    assert created.status_code == 303
    template_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[1])

    # A mailing: a draft, a bad time refused, then sent now, its progress polled to the end.
    made = await admin.submit(base, base, {"name": "Весенняя", "segment_id": str(segment_id), "template_id": "x"})
    assert made.status_code == 422 and RU("mailings.error.template") in text_of(made)
    made = await admin.submit(
        base, base, {"name": "Весенняя", "segment_id": str(segment_id), "template_id": str(template_id)}
    )
    assert made.status_code == 303
    mailing_path = made.headers["location"]
    mailing_id = int(mailing_path.rsplit("/", 1)[1])
    detail = await admin.get(mailing_path)
    assert RU("mailings.state.draft") in text_of(detail) and f"{mailing_path}/schedule" in detail.text
    bad_time = await admin.submit(mailing_path, f"{mailing_path}/schedule", {"when": "at", "at": "tomorrow"})
    assert bad_time.status_code == 422 and RU("mailings.error.at") in text_of(bad_time)
    scheduled = await admin.submit(mailing_path, f"{mailing_path}/schedule", {"when": "now"})
    assert scheduled.status_code == 303
    assert 'hx-trigger="every 1s"' in (await admin.get(mailing_path)).text
    done = await finished_mailing(admin, services, romashka.slug, mailing_id)
    assert RU("mailings.state.sent") in done and f"{RU('mailings.sent')}: <strong>2</strong>" in done
    assert sorted(item.recipients[0] for item in smtp.received) == ["anna@example.org", "boris@example.org"]
    assert "Весенняя" in text_of(await admin.get(base))
    # A second draft, cancelled.
    second = await admin.submit(
        base, base, {"name": "Отменённая", "segment_id": str(segment_id), "template_id": str(template_id)}
    )
    second_path = second.headers["location"]
    assert (await admin.submit(second_path, f"{second_path}/cancel", {})).status_code == 303
    assert RU("mailings.state.cancelled") in text_of(await admin.get(second_path))
    audit = (await http.get("/api/v1/audit", headers=romashka.auth, params={"limit": "100"})).json()["items"]
    actions = {(row["action"], row["channel"]) for row in audit}
    assert {("segment.created", "console"), ("mail_template.created", "console"), ("mailing.scheduled", "console"),
            ("mailing.cancelled", "console")} <= actions  # fmt: skip

    # The other company sees none of it, and cannot use it.
    theirs = f"/{lyutik.slug}/mailings"
    assert "Весенняя" not in text_of(await other.get(theirs)) and "VIP-клиенты" not in text_of(await other.get(theirs))
    for path in (f"/{mailing_id}", f"/segments/{segment_id}", f"/templates/{template_id}"):
        assert (await other.get(theirs + path)).status_code == 404
    stolen = await other.submit(
        theirs, theirs, {"name": "x", "segment_id": str(segment_id), "template_id": str(template_id)}
    )
    assert stolen.status_code == 422
    assert RU("mailings.count", recipients=1, clients=1) in text_of(await other.get(f"{theirs}/segments/new"))
    # Without the page's token: refused.
    assert (await admin.client.post(f"{base}/segments", data={"name": "x"})).status_code == 403

    # A manager may only read their own mailings: no forms, no builder, refused posts; an
    # operator has no mailings at all; the Start edition has no mailings module.
    manager = await add_staff(http, romashka, "mila", role="manager")
    await signed_in(staff, romashka, manager)
    theirs_list = await staff.get(base)
    assert theirs_list.status_code == 200 and f"{base}/segments/new" not in theirs_list.text
    assert "Весенняя" not in text_of(theirs_list)
    assert (await staff.get(f"{base}/segments/new")).status_code == 403
    assert (await staff.get(f"{base}/segments/{segment_id}")).status_code == 404
    token = csrf_in(theirs_list.text)
    posted = await staff.client.post(f"{base}/segments", data={"_csrf": token, "name": "Мой", "statuses": "client"})
    assert posted.status_code == 403
    posted = await staff.client.post(f"{mailing_path}/cancel", data={"_csrf": token})
    assert posted.status_code == 403
    await staff.submit(base, f"/{romashka.slug}/logout", {})
    operator = await add_staff(http, romashka, "olga", role="operator")
    await signed_in(staff, romashka, operator)
    assert (await staff.get(base)).status_code == 403
    await staff.submit(f"/{romashka.slug}/tasks", f"/{romashka.slug}/logout", {})
    await signed_in(staff, small)
    assert (await staff.get(f"/{small.slug}/mailings")).status_code == 402


# ---------------------------------------------------------------- Telegram

BOT_TOKEN = "4343434343:AAE_fake-token-for-console-tests_0123"


@pytest.fixture
async def bot_url(settings: Settings, services: Services) -> AsyncIterator[str]:
    """The app with a Telegram bot (its Bot API a local fake), beside the suite's plain app."""
    fake = FakeTelegram(BOT_TOKEN)
    await fake.start()
    telegram = TelegramSettings(token=Secret(BOT_TOKEN), api_base=fake.url)
    try:
        async with serve(create_app(replace(settings, telegram=telegram), services=services, run_timers=False)) as url:
            yield url
    finally:
        await fake.stop()


async def test_connecting_telegram_shows_a_one_time_link_and_its_qr_code(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services, bot_url: str, base_url: str
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    admin, other, plain = Browser.open(bot_url), Browser.open(bot_url), Browser.open(base_url)
    try:
        await signed_in(admin, romashka)
        await signed_in(other, lyutik)
        await signed_in(plain, romashka)
        page_path = f"/{romashka.slug}/telegram"

        page = await admin.get(page_path)
        assert page.status_code == 200 and RU("telegram.not_linked") in text_of(page)
        assert f'action="{page_path}/link"' in page.text and RU("telegram.get_link") in text_of(page)
        assert '<script src="/static/vendor/qrcode.js" defer>' in page.text
        assert '<script src="/static/console/telegram.js" defer>' in page.text
        script = await admin.get("/static/console/telegram.js")
        assert script.status_code == 200 and "createSvgTag" in script.text
        assert (await admin.get("/static/vendor/qrcode.js")).status_code == 200

        # Without JavaScript: the button posts the form and the page shows the link (and the QR's place).
        issued = await admin.submit(page_path, f"{page_path}/link", {})
        assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
        link = re.search(r'href="(https://t\.me/relay_test_bot\?start=[A-Za-z0-9_-]+)"', issued.text)
        assert link and f'data-qr="{link.group(1)}"' in issued.text
        # With htmx: only the link's fragment; the earlier link stops working.
        fragment = await htmx_post(admin, page_path, f"{page_path}/link", {})
        assert fragment.status_code == 200 and "<html" not in fragment.text and "data-qr=" in fragment.text
        newer = re.search(r'href="https://t\.me/relay_test_bot\?start=([A-Za-z0-9_-]+)"', fragment.text)
        assert newer
        stale = await redeem_link_code(
            services.db.pool, link.group(1).split("=")[1], telegram_user_id=777001, chat_id=777001
        )
        assert stale.outcome is not Redeemed.LINKED
        redeemed = await redeem_link_code(services.db.pool, newer.group(1), telegram_user_id=777001, chat_id=777001)
        assert redeemed.outcome is Redeemed.LINKED
        linked = await admin.get(page_path)
        assert "Telegram подключён" in text_of(linked) and RU("telegram.relink") in text_of(linked)
        audit = (await http.get("/api/v1/audit", headers=romashka.auth, params={"entity": "user"})).json()["items"]
        assert ("telegram.link_requested", "console") in {(row["action"], row["channel"]) for row in audit}

        # The other company's admin is not linked, and the link of Ромашка's admin is none of theirs.
        theirs = await other.get(f"/{lyutik.slug}/telegram")
        assert RU("telegram.not_linked") in text_of(theirs)
        # Without the page's token: refused.
        assert (await other.client.post(f"/{lyutik.slug}/telegram/link")).status_code == 403

        # An installation without a bot says so, and offers no button.
        unconfigured = await plain.get(page_path)
        assert RU("telegram.not_configured") in text_of(unconfigured) and f"{page_path}/link" not in unconfigured.text
        assert (await plain.submit(page_path, f"{page_path}/link", {})).status_code == 409
    finally:
        for browser in (admin, other, plain):
            await browser.close()
