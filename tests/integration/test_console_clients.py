"""The console's clients list (live search, filters, "More"), the "New client" form, the
client card (log a call with its next step, add a task, tick it done) and the deals kanban
(move a deal; a lost stage asks for the reason). Real HTTP against the app, real PostgreSQL,
two companies in every test, and roles whose rights stop them."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from crm.admin_ui.deals_pages import CARDS_PER_COLUMN
from crm.admin_ui.texts import Texts
from crm.platform.app import create_app
from crm.platform.editions import Editions
from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope
from crm.settings import Settings
from crm.tenants.clients.tables import Client
from tests.conftest import STAFF_PASSWORD, SignedUpTenant, TenantFactory, add_staff
from tests.integration.console_support import Browser, csrf_in
from tests.integration.helpers import create_client, seed_client, seed_deal, seed_task, tenant_of
from tests.support import serve

RU, EN = Texts("ru"), Texts("en")
HTMX = {"HX-Request": "true"}


async def signed_in(base_url: str, company: SignedUpTenant, email: str | None = None) -> Browser:
    browser = Browser.open(base_url)
    response = await browser.sign_in(company, email=email, password=STAFF_PASSWORD if email else None)
    assert response.status_code == 303, response.text
    return browser


def text_of(page: str) -> str:
    """The page's visible text, roughly (tags out, entities decoded, spaces folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def audit_rows(company: SignedUpTenant, action: str) -> list[dict[str, Any]]:
    from crm.platform.tenancy import scope_connection

    async with tenant_scope(await tenant_of(company)):
        rows = await scope_connection().fetch(
            "SELECT action, channel, entity_id FROM audit_log WHERE action = $1 ORDER BY id", action
        )
    return [dict(row) for row in rows]


async def test_the_list_searches_filters_and_pages_within_the_company(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str
) -> None:
    romashka, lyutik = await make_tenant(company="Ромашка"), await make_tenant(company="Лютик")
    kuznetsova = await create_client(
        http, romashka.auth, name="Анна Кузнецова", phones=["+7 912 345-67-89"], tags=["vip"], status="client"
    )
    await create_client(http, romashka.auth, name="Пётр Иванов", status="lead")
    await create_client(http, lyutik.auth, name="Анна Кузнецова-Лютикова", phones=["+7 912 000-00-01"])
    old = datetime.now(UTC) - timedelta(days=400)
    sleepy = await seed_client(romashka, "Сонная компания", status="prospect", created_at=old)
    ours, theirs = await signed_in(base_url, romashka), await signed_in(base_url, lyutik)
    try:
        page = await ours.get(f"/{romashka.slug}/clients")
        assert page.status_code == 200
        shown = text_of(page.text)
        assert "Анна Кузнецова" in shown and "Пётр Иванов" in shown and "Сонная компания" in shown
        assert "Лютикова" not in shown
        assert 'href="tel:+79123456789"' in page.text
        assert f'href="/{romashka.slug}/clients/{kuznetsova["id"]}"' in page.text
        assert '<label for="client-q">' in page.text and 'hx-trigger="input changed delay:300ms, search"' in page.text

        # Live search: htmx asks for the results only; a typo and another phone format still find her.
        for typed in ("кузнецва", "8 912 345 67 89", "56789"):
            found = await ours.get(
                f"/{romashka.slug}/clients", params={"q": typed}, headers={**HTMX, "HX-Target": "client-results"}
            )
            assert found.status_code == 200 and "<html" not in found.text, typed
            assert "Анна Кузнецова" in found.text and "Пётр" not in found.text, typed
            assert "Лютикова" not in found.text, typed
        # Without the script the same address is a whole page.
        plain = await ours.get(f"/{romashka.slug}/clients", params={"q": "кузнецова"})
        assert "<html" in plain.text and "Анна Кузнецова" in plain.text
        # Search narrowed by a filter.
        none = await ours.get(f"/{romashka.slug}/clients", params={"q": "кузнецова", "status": "lead"})
        assert "Анна Кузнецова" not in text_of(none.text)

        # Filters.
        leads = text_of((await ours.get(f"/{romashka.slug}/clients", params={"status": "lead"})).text)
        assert "Пётр Иванов" in leads and "Анна Кузнецова" not in leads
        vip = text_of((await ours.get(f"/{romashka.slug}/clients", params={"tag": "VIP"})).text)
        assert "Анна Кузнецова" in vip and "Пётр Иванов" not in vip
        dormant = text_of((await ours.get(f"/{romashka.slug}/clients", params={"dormant": "30"})).text)
        assert "Сонная компания" in dormant and "Анна Кузнецова" not in dormant
        assert f"/clients/{sleepy}" in (await ours.get(f"/{romashka.slug}/clients?dormant=30")).text

        # The other company sees only its own client, whatever it searches.
        their_page = text_of((await theirs.get(f"/{lyutik.slug}/clients")).text)
        assert "Лютикова" in their_page and "Пётр Иванов" not in their_page
        their_search = await theirs.get(f"/{lyutik.slug}/clients", params={"q": "Пётр Иванов"})
        assert RU("clients.none") in their_search.text and not re.search(r"/clients/\d", their_search.text)
        # Their session does not open our list.
        assert (await theirs.get(f"/{romashka.slug}/clients")).status_code == 303
    finally:
        await ours.close()
        await theirs.close()


async def test_more_pages_through_every_client_once(make_tenant: TenantFactory, base_url: str) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    async with tenant_scope(await tenant_of(romashka)):
        await Client.insert(
            *[Client(kind="company", name=f"Клиент {n:03}", phones=[], emails=[], tags=[]) for n in range(120)]
        )
    await seed_client(lyutik, "Чужой клиент")
    browser = await signed_in(base_url, romashka)
    try:
        page = await browser.get(f"/{romashka.slug}/clients")
        names = re.findall(r"Клиент \d{3}", page.text)
        assert len(names) == 50 and 'id="clients-more"' in page.text
        seen = list(names)
        more = html.unescape(re.search(r'id="clients-more">\s*<td colspan="5"><a href="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        # htmx appends the next rows (and a new "More") to the table.
        rows = await browser.get(more, headers={**HTMX, "HX-Target": "clients-more"})
        assert rows.text.lstrip().startswith("<tr") and "<table" not in rows.text
        seen += re.findall(r"Клиент \d{3}", rows.text)
        # Without the script, "More" is a page of its own.
        last = html.unescape(re.search(r'id="clients-more">\s*<td colspan="5"><a href="([^"]+)"', rows.text).group(1))  # type: ignore[union-attr]
        final = await browser.get(last)
        assert "<html" in final.text and 'id="clients-more"' not in final.text
        seen += re.findall(r"Клиент \d{3}", final.text)
        assert sorted(seen) == [f"Клиент {n:03}" for n in range(120)]
        assert "Чужой клиент" not in final.text
    finally:
        await browser.close()


async def test_new_client_form_names_bad_fields_and_warns_of_duplicates(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    existing = await create_client(http, romashka.auth, name="Ольга Старая", phones=["+79161112233"])
    await create_client(http, lyutik.auth, name="Их клиент", phones=["+79165554433"])
    browser = await signed_in(base_url, romashka)
    new, action = f"/{romashka.slug}/clients/new", f"/{romashka.slug}/clients"
    try:
        form = await browser.get(new)
        assert form.status_code == 200 and '<label for="new-name">' in form.text
        # No form token: refused.
        forged = await browser.client.post(action, data={"kind": "person", "name": "Подделка"})
        assert forged.status_code == 403

        bad = await browser.submit(new, action, {"kind": "person", "name": "  ", "phone": "12"})
        assert bad.status_code == 422
        assert 'aria-describedby="new-name-error"' in bad.text and 'id="new-name-error"' in bad.text
        assert 'aria-describedby="new-phones-error"' in bad.text and RU("clients.field.phones") in bad.text

        # The same phone as another client of this company: shown, with a way to save anyway.
        twin = {"kind": "person", "name": "Ольга Новая", "phone": "8 916 111-22-33", "tags": "опт, VIP"}
        duplicate = await browser.submit(new, action, twin)
        assert duplicate.status_code == 409 and RU("clients.duplicates") in duplicate.text
        assert (
            f'href="/{romashka.slug}/clients/{existing["id"]}"' in duplicate.text and 'name="force"' in duplicate.text
        )
        # Another company's client with this phone is no duplicate here.
        theirs = await browser.submit(new, action, {"kind": "person", "name": "Кто-то", "phone": "+79165554433"})
        assert theirs.status_code == 303

        saved = await browser.submit(new, action, {**twin, "force": "1"})
        assert saved.status_code == 303
        client_id = int(saved.headers["location"].rsplit("/", 1)[1])
        card = await browser.get(saved.headers["location"])
        assert card.status_code == 200 and "Ольга Новая" in card.text and 'href="tel:+79161112233"' in card.text
        assert "vip" in card.text
        rows = await audit_rows(romashka, "client.created")
        assert {"action": "client.created", "channel": "console", "entity_id": str(client_id)} in rows
        # The other company's log holds only its own client, created over the API.
        assert [row["channel"] for row in await audit_rows(lyutik, "client.created")] == ["api"]
    finally:
        await browser.close()


async def test_the_card_logs_a_call_with_its_next_step_and_handles_tasks(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    client = await create_client(
        http, romashka.auth, kind="company", name="ООО «Вектор»", phones=["+74951234567"], emails=["Info@Vector.ru"]
    )
    person = await create_client(http, romashka.auth, name="Ирина Петрова", phones=["+79160000001"])
    linked = await http.post(
        f"/api/v1/clients/{person['id']}/companies",
        json={"company_id": client["id"], "position": "Бухгалтер"},
        headers=romashka.auth,
    )
    assert linked.status_code == 200
    admin_id = (await http.get("/api/v1/me", headers=romashka.auth)).json()["user"]["id"]
    await seed_deal(romashka, client["id"], responsible_id=admin_id, title="Поставка бумаги")
    their_client = await create_client(http, lyutik.auth, name="Клиент Лютика")
    card_path = f"/{romashka.slug}/clients/{client['id']}"
    calls, tasks = f"{card_path}/calls", f"{card_path}/tasks"
    browser = await signed_in(base_url, romashka)
    theirs = await signed_in(base_url, lyutik)
    try:
        card = await browser.get(card_path)
        assert card.status_code == 200
        assert 'href="tel:+74951234567"' in card.text and 'href="mailto:info@vector.ru"' in card.text
        assert "Ирина Петрова" in card.text and "Бухгалтер" in card.text and "Поставка бумаги" in card.text
        assert "Olga Petrova" in card.text  # the responsible
        assert RU("card.log_call") in card.text and '<label for="call-outcome">' in card.text
        assert "Дозвонились — интересно" in card.text  # the company's call outcomes

        # The company requires a next step after this outcome: the form says so, nothing is saved.
        missing = await browser.submit(card_path, calls, {"outcome": "interested", "comment": "Хотят счёт"})
        assert missing.status_code == 422 and RU("clients.field.next_step") in missing.text
        assert 'aria-describedby="call-next_step-error"' in missing.text and "Хотят счёт" in missing.text
        # htmx gets the form alone, to swap in place.
        page = await browser.get(card_path)
        fragment = await browser.client.post(
            calls,
            data={"_csrf": csrf_in(page.text), "outcome": "interested"},
            headers={**HTMX, "HX-Target": "call-form"},
        )
        assert fragment.status_code == 422 and fragment.text.lstrip().startswith('<form id="call-form"')

        logged = await browser.submit(
            card_path, calls, {"outcome": "interested", "comment": "Хотят счёт", "next_quick": "tomorrow"}
        )
        assert logged.status_code == 303 and logged.headers["location"] == f"{card_path}#timeline"
        card = await browser.get(card_path)
        assert "Хотят счёт" in card.text and "Связаться: ООО «Вектор»" in card.text  # the follow-up task
        activity = await audit_rows(romashka, "activity.created")
        assert [row["channel"] for row in activity] == ["console"]
        followups = (await http.get("/api/v1/tasks", params={"client_id": client["id"]}, headers=romashka.auth)).json()
        [followup] = followups["items"]
        local = datetime.fromisoformat(followup["due_at_local"])
        assert (local.hour, local.minute) == (10, 0) and local.date() > datetime.now(UTC).date() - timedelta(days=1)

        # An exact time is read in the user's timezone (Europe/Moscow, UTC+3).
        exact = await browser.submit(
            card_path, tasks, {"title": "Отправить договор", "due_quick": "tomorrow", "due_exact": "2031-05-20T15:30"}
        )
        assert exact.status_code == 303
        listed = (await http.get("/api/v1/tasks", params={"client_id": client["id"]}, headers=romashka.auth)).json()
        contract = next(task for task in listed["items"] if task["title"] == "Отправить договор")
        assert contract["due_at"].startswith("2031-05-20T12:30")
        no_title = await browser.submit(card_path, tasks, {"title": " ", "due_quick": "tomorrow"})
        assert no_title.status_code == 422 and 'aria-describedby="task-title-error"' in no_title.text

        # Done: htmx gets the task list again, without the task; a second click changes nothing.
        page = await browser.get(card_path)
        assert "Отправить договор" in page.text
        done_url = f"{card_path}/tasks/{contract['id']}/done"
        done = await browser.client.post(done_url, data={"_csrf": csrf_in(page.text)}, headers=HTMX)
        assert done.status_code == 200 and done.text.lstrip().startswith('<section id="tasks"')
        assert "Отправить договор" not in done.text and "Связаться" in done.text
        again = await browser.client.post(done_url, data={"_csrf": csrf_in(page.text)})
        assert again.status_code == 303
        assert [row["channel"] for row in await audit_rows(romashka, "task.completed")] == ["console"]
        assert (await browser.client.post(done_url, data={})).status_code == 403  # no form token

        # The other company: its card ids are its own, and its session opens none of ours.
        assert (await theirs.get(card_path)).status_code == 303
        their_card = await theirs.get(f"/{lyutik.slug}/clients/{their_client['id']}")
        assert their_card.status_code == 200 and "Вектор" not in their_card.text
        assert (await browser.get(f"/{romashka.slug}/clients/999999")).status_code == 404
        assert await audit_rows(lyutik, "activity.created") == []
    finally:
        await browser.close()
        await theirs.close()


async def test_a_manager_sees_only_own_clients_and_roles_without_rights_are_stopped(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    boris = await add_staff(http, romashka, "boris", role="manager")
    vera = await add_staff(http, romashka, "vera", role="manager")
    olya = await add_staff(http, romashka, "olya", role="operator")
    mine = await seed_client(romashka, "Клиент Бориса", responsible_id=boris.id)
    hers = await seed_client(romashka, "Клиент Веры", responsible_id=vera.id)
    olyas = await seed_client(romashka, "Клиент Оли", responsible_id=olya.id)
    await seed_task(romashka, hers, "Задача Веры", vera.id)
    her_deal = await seed_deal(romashka, hers, responsible_id=vera.id, title="Сделка Веры")
    my_deal = await seed_deal(romashka, mine, responsible_id=boris.id, title="Сделка Бориса")
    await seed_client(lyutik, "Клиент Лютика")
    manager = await signed_in(base_url, romashka, boris.email)
    operator = await signed_in(base_url, romashka, olya.email)
    try:
        listed = text_of((await manager.get(f"/{romashka.slug}/clients")).text)
        assert "Клиент Бориса" in listed and "Клиент Веры" not in listed and "Клиент Лютика" not in listed
        found = await manager.get(f"/{romashka.slug}/clients", params={"q": "Клиент Веры"})
        assert f"/clients/{hers}" not in found.text
        assert (await manager.get(f"/{romashka.slug}/clients/{hers}")).status_code == 404
        assert (await manager.get(f"/{romashka.slug}/clients/{mine}")).status_code == 200
        # Posting to a colleague's card is refused the same way.
        page = await manager.get(f"/{romashka.slug}/clients/{mine}")
        token = csrf_in(page.text)
        call = await manager.client.post(
            f"/{romashka.slug}/clients/{hers}/calls",
            data={"_csrf": token, "outcome": "not_interested", "comment": "чужой"},
        )
        assert call.status_code == 404 and await audit_rows(romashka, "activity.created") == []
        board = await manager.get(f"/{romashka.slug}/deals")
        assert "Сделка Бориса" in board.text and "Сделка Веры" not in board.text
        moved = await manager.client.post(
            f"/{romashka.slug}/deals/{her_deal}/move", data={"_csrf": token, "stage_id": "1"}
        )
        assert moved.status_code == 404

        # An operator has no deals rights: no menu entry, a 403 page, a refused move.
        home = await operator.get(f"/{romashka.slug}/")
        assert f'href="/{romashka.slug}/clients"' in home.text and f'href="/{romashka.slug}/deals"' not in home.text
        refused = await operator.get(f"/{romashka.slug}/deals")
        assert refused.status_code == 403 and "<html" in refused.text
        move = await operator.client.post(
            f"/{romashka.slug}/deals/{my_deal}/move", data={"_csrf": csrf_in(home.text), "stage_id": "1"}
        )
        assert move.status_code == 403
        # Their own client's card opens, without the deals they may not read.
        own = await operator.get(f"/{romashka.slug}/clients/{olyas}")
        assert own.status_code == 200 and EN("card.deals") not in own.text and EN("card.log_call") in own.text
        assert (await operator.get(f"/{romashka.slug}/clients/{mine}")).status_code == 404
        # The operator may not add clients for someone else: the form has no responsible picker.
        new = await operator.get(f"/{romashka.slug}/clients/new")
        assert new.status_code == 200 and 'name="responsible_id"' not in new.text
    finally:
        await manager.close()
        await operator.close()


async def _deal(http: httpx.AsyncClient, company: SignedUpTenant, deal_id: int) -> dict[str, Any]:
    response = await http.get(f"/api/v1/deals/{deal_id}", headers=company.auth)
    assert response.status_code == 200, response.text
    deal: dict[str, Any] = response.json()
    return deal


async def test_the_kanban_moves_deals_and_asks_why_one_was_lost(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    [pipeline, *_] = (await http.get("/api/v1/pipelines", headers=romashka.auth)).json()["items"]
    stages = pipeline["stages"]
    first, second = [stage for stage in stages if stage["kind"] == "open"][:2]
    lost = next(stage for stage in stages if stage["kind"] == "lost")
    won = next(stage for stage in stages if stage["kind"] == "won")
    client = await create_client(http, romashka.auth, kind="company", name="ООО «Ромб»")
    made = await http.post(
        "/api/v1/deals",
        json={"title": "Поставка столов", "client_id": client["id"], "amount": "125000.50"},
        headers=romashka.auth,
    )
    deal = made.json()
    their_client = await create_client(http, lyutik.auth, name="Клиент Лютика")
    await http.post("/api/v1/deals", json={"title": "Их сделка", "client_id": their_client["id"]}, headers=lyutik.auth)
    board_path, move = f"/{romashka.slug}/deals", f"/{romashka.slug}/deals/{deal['id']}/move"
    browser = await signed_in(base_url, romashka)
    theirs = await signed_in(base_url, lyutik)
    try:
        board = await browser.get(board_path)
        assert board.status_code == 200
        assert first["names"]["ru"] in board.text and lost["names"]["ru"] in board.text
        assert "Поставка столов" in board.text and "125000.50 RUB" in board.text and "Их сделка" not in board.text
        assert f'href="/{romashka.slug}/clients/{client["id"]}"' in board.text
        assert f'<label for="deal-{deal["id"]}-stage"' in board.text and "/static/console/kanban.js" in board.text
        their_board = await theirs.get(f"/{lyutik.slug}/deals")
        assert "Их сделка" in their_board.text and "Поставка столов" not in their_board.text

        assert (await browser.client.post(move, data={"stage_id": str(second["id"])})).status_code == 403
        # A reason typed for an open stage is not the API's business: it is left out.
        moved = await browser.submit(board_path, move, {"stage_id": str(second["id"]), "lost_reason": "x"})
        assert moved.status_code == 303
        assert moved.headers["location"] == f"{board_path}?pipeline_id={pipeline['id']}#deal-{deal['id']}"
        assert (await _deal(http, romashka, deal["id"]))["stage_id"] == second["id"]

        # A lost stage without the reason: the card says so next to the field; the deal stays.
        no_reason = await browser.submit(board_path, move, {"stage_id": str(lost["id"])})
        assert no_reason.status_code == 422 and RU("clients.field.lost_reason") in no_reason.text
        assert f'aria-describedby="deal-{deal["id"]}-lost_reason-error"' in no_reason.text
        assert (await _deal(http, romashka, deal["id"]))["stage_id"] == second["id"]
        with_reason = await browser.submit(
            board_path, move, {"stage_id": str(lost["id"]), "lost_reason": "Дорого", "pipeline_id": str(pipeline["id"])}
        )
        assert with_reason.status_code == 303
        after = await _deal(http, romashka, deal["id"])
        assert (after["status"], after["lost_reason"]) == ("lost", "Дорого")

        # With htmx the answer is the board itself, swapped in place.
        page = await browser.get(board_path)
        swapped = await browser.client.post(
            move, data={"_csrf": csrf_in(page.text), "stage_id": str(won["id"])}, headers=HTMX
        )
        assert swapped.status_code == 200 and swapped.text.lstrip().startswith('<div id="board"')
        assert (await _deal(http, romashka, deal["id"]))["status"] == "won"
        channels = [row["channel"] for row in await audit_rows(romashka, "deal.moved")]
        assert channels == ["console", "console", "console"]

        # The other company's session moves nothing here.
        refused = await theirs.client.post(
            move, data={"_csrf": csrf_in(their_board.text), "stage_id": str(first["id"])}
        )
        assert refused.status_code in (303, 403)
        assert (await _deal(http, romashka, deal["id"]))["status"] == "won"
        assert await audit_rows(lyutik, "deal.moved") == []
    finally:
        await browser.close()
        await theirs.close()


def _more_link(page: str) -> str:
    match = re.search(r'class="more" id="stage-\d+-more"><a href="([^"]+)"', page)
    assert match, "no More link"
    return html.unescape(match.group(1))


async def test_a_full_column_shows_more_cards_on_demand(make_tenant: TenantFactory, base_url: str) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    client = await seed_client(romashka, "Оптовик")
    ids = [await seed_deal(romashka, client, responsible_id=None, title=f"Сделка {n:02}") for n in range(55)]
    await seed_deal(lyutik, await seed_client(lyutik, "Чужой"), responsible_id=None, title="Сделка чужая")
    browser = await signed_in(base_url, romashka)
    try:
        board = await browser.get(f"/{romashka.slug}/deals")
        shown = set(re.findall(r"Сделка \d\d", board.text))
        assert len(shown) == CARDS_PER_COLUMN and "55 сделок" in board.text and "Сделка чужая" not in board.text
        more = _more_link(board.text)
        # htmx appends the next cards and a new "More" to the column.
        rest = await browser.get(more, headers={**HTMX, "HX-Target": "x"})
        assert rest.status_code == 200 and rest.text.lstrip().startswith("<li")
        shown |= set(re.findall(r"Сделка \d\d", rest.text))
        last = await browser.get(_more_link(rest.text), headers=HTMX)
        shown |= set(re.findall(r"Сделка \d\d", last.text))
        assert shown == {f"Сделка {n:02}" for n in range(55)} and 'class="more"' not in last.text
        # Without the script, "More" is a page of its own, its forms plain posts.
        plain = await browser.get(more)
        assert plain.status_code == 200 and "<html" in plain.text and "hx-post" not in plain.text
        assert len(set(re.findall(r"Сделка \d\d", plain.text))) == CARDS_PER_COLUMN
        assert len(ids) == 55
    finally:
        await browser.close()


async def test_modules_outside_the_edition_are_hidden_and_refused(
    make_tenant: TenantFactory, http: httpx.AsyncClient, settings: Settings, services: Services
) -> None:
    """An edition without deals and calls (the shipped ones all have them: one is trimmed here)."""
    start, business = await make_tenant(edition="start"), await make_tenant(edition="business")
    trimmed = Editions(
        msgspec.structs.replace(edition, modules=tuple(m for m in edition.modules if m not in ("deals", "calls")))
        if edition.key == "start"
        else edition
        for edition in services.editions.values()
    )
    client = await create_client(http, start.auth, name="Клиент без сделок")
    theirs = await create_client(http, business.auth, name="Клиент со сделками")
    app = create_app(settings, services=replace(services, editions=trimmed), run_timers=False)
    async with serve(app) as url:
        small, full = await signed_in(url, start), await signed_in(url, business)
        try:
            home = await small.get(f"/{start.slug}/")
            assert f'href="/{start.slug}/clients"' in home.text and f'href="/{start.slug}/deals"' not in home.text
            refused = await small.get(f"/{start.slug}/deals")
            assert refused.status_code == 402 and "<html" in refused.text
            card = await small.get(f"/{start.slug}/clients/{client['id']}")
            assert card.status_code == 200 and 'id="call-form"' not in card.text and 'id="deals"' not in card.text
            assert 'id="task-form"' in card.text  # tasks are in the edition
            call = await small.client.post(
                f"/{start.slug}/clients/{client['id']}/calls",
                data={"_csrf": csrf_in(card.text), "outcome": "not_interested"},
            )
            assert call.status_code == 402 and await audit_rows(start, "activity.created") == []
            # The other company's edition keeps both.
            their_card = await full.get(f"/{business.slug}/clients/{theirs['id']}")
            assert 'id="call-form"' in their_card.text and 'id="deals"' in their_card.text
            assert (await full.get(f"/{business.slug}/deals")).status_code == 200
        finally:
            await small.close()
            await full.close()
