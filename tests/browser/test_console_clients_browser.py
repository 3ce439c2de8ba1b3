"""Clients, the client card and the deals kanban in real Chromium: the live search, forms that
htmx swaps in place (errors included), drag and drop between stages, and phone-sized pages.
Two companies; the other's records never show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SignedUpTenant, TenantFactory
from tests.integration.helpers import create_client


async def _sign_in(context: Any, company: SignedUpTenant) -> Any:
    page = await context.new_page()
    await page.goto(f"/{company.slug}/login")
    await page.get_by_label("Эл. почта").fill(company.email)
    await page.get_by_label("Пароль").fill(company.password)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_url(f"**/{company.slug}")
    return page


async def _fits(page: Any, width: int) -> bool:
    return bool(await page.evaluate(f"document.documentElement.scrollWidth <= {width}"))


async def test_live_search_card_forms_and_kanban_drag_and_drop(
    chromium: Any, make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, screenshots: Path
) -> None:
    romashka, lyutik = await make_tenant(company="Ромашка"), await make_tenant(company="Лютик")
    vector = await create_client(
        http, romashka.auth, kind="company", name="ООО «Вектор»", phones=["+74951234567"], status="client"
    )
    await create_client(http, romashka.auth, name="Пётр Иванов", phones=["+79160000002"])
    await create_client(http, lyutik.auth, name="ООО «Вектор-Лютик»")
    [pipeline] = (await http.get("/api/v1/pipelines", headers=romashka.auth)).json()["items"][:1]
    second = [stage for stage in pipeline["stages"] if stage["kind"] == "open"][1]
    lost = next(stage for stage in pipeline["stages"] if stage["kind"] == "lost")
    deal = (
        await http.post(
            "/api/v1/deals", json={"title": "Поставка столов", "client_id": vector["id"]}, headers=romashka.auth
        )
    ).json()
    context = await chromium.new_context(base_url=base_url, locale="ru-RU", viewport={"width": 1280, "height": 900})
    try:
        page = await _sign_in(context, romashka)

        # Typing searches as you go; the address follows, the page does not reload.
        await page.goto(f"/{romashka.slug}/clients")
        await page.evaluate("window.__same_page = true")
        await page.get_by_label("Поиск: имя, телефон, эл. почта, ИНН").press_sequentially("вектр", delay=30)
        await page.wait_for_selector("#client-results >> text=Лучшие совпадения")
        rows = page.locator("#client-rows tr")
        assert await rows.count() == 1 and "ООО «Вектор»" in await rows.first.inner_text()
        assert await page.evaluate("window.__same_page === true") and "q=" in page.url
        await page.screenshot(path=str(screenshots / "clients-search.png"), full_page=True)
        await page.get_by_label("Статус").select_option("lead")
        await page.wait_for_selector("#client-results >> text=Клиентов не найдено")

        # The card: a call whose outcome needs a next step is refused in place, then saved.
        await page.goto(f"/{romashka.slug}/clients/{vector['id']}")
        await page.get_by_label("Результат").select_option("interested")
        await page.get_by_label("Комментарий").fill("Просят счёт")
        await page.get_by_role("button", name="Сохранить звонок").click()
        await page.wait_for_selector("#call-next_step-error")
        assert await page.get_by_label("Комментарий").input_value() == "Просят счёт"
        await page.get_by_label("Когда").first.select_option("tomorrow")
        await page.get_by_role("button", name="Сохранить звонок").click()
        await page.wait_for_selector("#timeline >> text=Просят счёт")
        assert await page.locator("#tasks li").count() == 1
        await page.screenshot(path=str(screenshots / "client-card.png"), full_page=True)
        await page.locator("#tasks").get_by_role("button", name="Готово").click()
        await page.wait_for_selector("#tasks >> text=Пока ничего нет.")

        # The kanban: drag the deal to the next stage; dropped on a lost stage it asks why first.
        # Wide enough for every column at once (Playwright's drag does not scroll the board).
        await page.set_viewport_size({"width": 2800, "height": 900})
        await page.goto(f"/{romashka.slug}/deals")
        # Held by its title, as a person would (a drag cannot start in the card's form fields).
        grip = {"x": 12, "y": 10}
        card = page.locator(f"#deal-{deal['id']}")
        await card.drag_to(page.locator(f".column[data-stage='{second['id']}']"), source_position=grip)
        await page.wait_for_selector(f".column[data-stage='{second['id']}'] #deal-{deal['id']}")
        moved = (await http.get(f"/api/v1/deals/{deal['id']}", headers=romashka.auth)).json()
        assert moved["stage_id"] == second["id"]
        reason = page.locator(f"#deal-{deal['id']}-reason")
        assert not await reason.is_visible()
        await card.drag_to(page.locator(f".column[data-stage='{lost['id']}']"), source_position=grip)
        await reason.wait_for(state="visible")
        assert await reason.evaluate("element => element === document.activeElement")
        await reason.fill("Дорого")
        await page.locator(f"#deal-{deal['id']}").get_by_role("button", name="Перенести").click()
        await page.wait_for_selector(f".column[data-stage='{lost['id']}'] #deal-{deal['id']}")
        closed = (await http.get(f"/api/v1/deals/{deal['id']}", headers=romashka.auth)).json()
        assert (closed["status"], closed["lost_reason"]) == ("lost", "Дорого")
        await page.screenshot(path=str(screenshots / "deals-kanban.png"), full_page=True)

        # Phone-sized: nothing scrolls sideways; the other company's client never showed.
        await page.set_viewport_size({"width": 390, "height": 844})
        for path in ("/clients", f"/clients/{vector['id']}", "/deals"):
            await page.goto(f"/{romashka.slug}{path}")
            assert await _fits(page, 390), path
            assert "Лютик" not in await page.content()
        await page.screenshot(path=str(screenshots / "deals-kanban-phone.png"), full_page=True)
    finally:
        await context.close()
