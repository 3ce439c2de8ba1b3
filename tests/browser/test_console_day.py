"""The issue's scenario in real Chromium: an admin invites a colleague with a role of `own`
scope and a department; the colleague accepts, signs in, sees only their own clients and logs
a call with a next step; the admin deactivates them and their open session is refused at the
next click. Another company's pages stay out of reach. Screenshots of the main pages go to
``test-artifacts/screenshots``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import SignedUpTenant, TenantFactory
from tests.integration.helpers import create_client, my_id

PASSWORD = "колобок на окне 42"


async def sign_in(page: Any, company: SignedUpTenant, email: str, password: str) -> None:
    await page.goto(f"/{company.slug}/login")
    await page.get_by_label("Эл. почта").fill(email)
    await page.get_by_label("Пароль").fill(password)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_url(f"**/{company.slug}")


async def invitation_link(company: SignedUpTenant, email: str) -> str:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        body = await scope_connection().fetchval(
            "SELECT body FROM mail_outbox WHERE kind = 'invitation' AND to_address = $1 ORDER BY id DESC LIMIT 1",
            email,
        )
    match = re.search(r"(/invite/\S+)", body or "")
    assert match, body
    return match.group(1)


async def test_a_day_from_invitation_to_deactivation(
    chromium: Any, make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, screenshots: Path
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    sales = (await http.post("/api/v1/departments", json={"name": "Продажи"}, headers=romashka.auth)).json()
    await create_client(http, lyutik.auth, name="Клиент Лютика")
    admin_browser = await chromium.new_context(
        base_url=base_url, locale="ru-RU", viewport={"width": 1280, "height": 900}
    )
    staff_browser = await chromium.new_context(
        base_url=base_url, locale="ru-RU", viewport={"width": 1280, "height": 900}
    )
    try:
        admin = await admin_browser.new_page()
        await sign_in(admin, romashka, romashka.email, romashka.password)

        # The admin invites Ivan as a manager (own clients) of the sales department.
        email = f"ivan@{romashka.slug}.example"
        await admin.goto(f"/{romashka.slug}/admin/users/invite")
        await admin.get_by_label("Эл. почта").fill(email)
        await admin.get_by_label("Имя").fill("Иван Петров")
        await admin.get_by_label("Роль").select_option("manager")
        await admin.get_by_label("Отдел").select_option(str(sales["id"]))
        await admin.get_by_role("button", name="Отправить приглашение").click()
        await admin.wait_for_load_state()
        await admin.goto(f"/{romashka.slug}/admin/users")
        await admin.screenshot(path=str(screenshots / "admin-users.png"), full_page=True)
        assert "Иван Петров" in await admin.locator("main").inner_text()

        # Ivan accepts the invitation from the mail and signs in.
        staff = await staff_browser.new_page()
        await staff.goto(await invitation_link(romashka, email))
        await staff.get_by_label("Пароль").fill(PASSWORD)
        await staff.get_by_role("button", name="Задать пароль и войти").click()
        await staff.wait_for_url(f"**/{romashka.slug}/login**")
        await sign_in(staff, romashka, email, PASSWORD)
        ivan = (await http.get("/api/v1/users", headers=romashka.auth, params={"q": "ivan@"})).json()["items"][0]
        assert ivan["department_id"] == sales["id"] and "manager" in (ivan.get("roles") or [ivan.get("role")])

        # Clients: one is Ivan's, one the admin's; Ivan's list shows only his own.
        his = await create_client(http, romashka.auth, name="Анна Клиентова", responsible_id=ivan["id"])
        await create_client(http, romashka.auth, name="Борис Чужой", responsible_id=await my_id(http, romashka.auth))
        await staff.goto(f"/{romashka.slug}/clients")
        listed = await staff.locator("main").inner_text()
        assert "Анна Клиентова" in listed and "Борис Чужой" not in listed and "Клиент Лютика" not in listed
        await staff.screenshot(path=str(screenshots / "clients.png"), full_page=True)

        # On the card Ivan logs a call with a next step; the follow-up task appears.
        await staff.goto(f"/{romashka.slug}/clients/{his['id']}")
        await staff.get_by_label("Результат").select_option("interested")
        await staff.get_by_label("Комментарий").fill("Договорились о встрече")
        await staff.get_by_label("Когда").first.select_option("tomorrow")
        await staff.get_by_role("button", name="Сохранить звонок").click()
        await staff.wait_for_selector("#timeline >> text=Договорились о встрече")
        assert await staff.locator("#tasks li").count() == 1
        card = (await http.get(f"/api/v1/clients/{his['id']}/card", headers=romashka.auth)).json()
        [call] = card["timeline"]
        assert call["author"]["id"] == ivan["id"] and call["next_task_id"] == card["tasks"][0]["id"]

        # Another company's pages are out of reach with Ivan's session.
        await staff.goto(f"/{lyutik.slug}/clients")
        assert "/login" in staff.url

        # The admin deactivates Ivan; his open session is refused at his next click.
        await admin.goto(f"/{romashka.slug}/admin/users/{ivan['id']}")
        await admin.screenshot(path=str(screenshots / "admin-user.png"), full_page=True)
        await admin.get_by_role("button", name="Отключить").click()
        await admin.wait_for_load_state()
        await staff.goto(f"/{romashka.slug}/clients/{his['id']}")
        assert "/login" in staff.url
        await sign_in_refused(staff, romashka, email)
    finally:
        await admin_browser.close()
        await staff_browser.close()


async def sign_in_refused(page: Any, company: SignedUpTenant, email: str) -> None:
    await page.goto(f"/{company.slug}/login")
    await page.get_by_label("Эл. почта").fill(email)
    await page.get_by_label("Пароль").fill(PASSWORD)
    await page.get_by_role("button", name="Войти").click()
    await page.wait_for_selector("[role=alert]")
    assert "/login" in page.url


MAIN_PAGES = (
    ("dashboard", ""),
    ("clients-list", "/clients"),
    ("deals-kanban", "/deals"),
    ("tasks", "/tasks"),
    ("planner", "/planner"),
    ("import", "/import"),
    ("mailings", "/mailings"),
    ("telegram", "/telegram"),
    ("admin-departments", "/admin/departments"),
    ("admin-roles", "/admin/roles"),
    ("admin-roles-manager", "/admin/roles/manager"),
    ("admin-audit", "/admin/audit"),
    ("admin-billing", "/admin/billing"),
    ("admin-settings", "/admin/settings"),
    ("admin-settings-pipelines", "/admin/settings/pipelines"),
)


async def test_the_main_pages_render_for_an_admin(
    chromium: Any, make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, screenshots: Path
) -> None:
    romashka = await make_tenant(company="Ромашка", edition="enterprise")
    lyutik = await make_tenant(company="Лютик")
    client = await create_client(http, romashka.auth, name="ООО «Вектор»", phones=["+74951234567"])
    await http.post(
        "/api/v1/deals", json={"title": "Поставка столов", "client_id": client["id"]}, headers=romashka.auth
    )
    await create_client(http, lyutik.auth, name="ООО «Лютик-Вектор»")
    context = await chromium.new_context(base_url=base_url, locale="ru-RU", viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        await sign_in(page, romashka, romashka.email, romashka.password)
        for name, path in MAIN_PAGES:
            response = await page.goto(f"/{romashka.slug}{path}")
            assert response is not None and response.status == 200, (path, response and response.status)
            text = await page.locator("main").inner_text()
            assert "Лютик" not in text, path
            await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    finally:
        await context.close()
