"""The web console in real Chromium: signing in, the pages a day's work uses, and what must be
refused (a form posted without its token, another company's pages). Two companies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TenantFactory


async def test_sign_in_and_refusals(
    chromium: Any, make_tenant: TenantFactory, base_url: str, screenshots: Path
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    context = await chromium.new_context(base_url=base_url, locale="ru-RU", viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    try:
        await page.goto(f"/{romashka.slug}/")
        assert page.url.endswith(f"/{romashka.slug}/login?next=/{romashka.slug}")
        await page.screenshot(path=str(screenshots / "login.png"), full_page=True)
        await page.get_by_label("Эл. почта").fill(romashka.email)
        await page.get_by_label("Пароль").fill(romashka.password)
        await page.get_by_role("button", name="Войти").click()
        await page.wait_for_url(f"**/{romashka.slug}")
        assert await page.get_by_role("heading", name="Здравствуйте, Olga Petrova!").is_visible()
        await page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

        # Another company's pages: the session is not theirs, so it is the sign-in page.
        await page.goto(f"/{lyutik.slug}/")
        assert "/login" in page.url and await page.get_by_role("heading", name="Вход в Лютик").is_visible()

        # A form posted without the page's token (as another site would) is refused.
        cookies = {cookie["name"]: cookie["value"] for cookie in await context.cookies()}
        async with httpx.AsyncClient(base_url=base_url, cookies=cookies) as forger:
            forged = await forger.post(f"/{romashka.slug}/logout-everywhere")
        assert forged.status_code == 403
        await page.goto(f"/{romashka.slug}/")
        # Still signed in: the forged post did nothing.
        assert await page.get_by_role("heading", name="Здравствуйте, Olga Petrova!").is_visible()

        # On a phone screen the menu folds into a toggle and the page still fits.
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.reload()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        await page.screenshot(path=str(screenshots / "dashboard-phone.png"), full_page=True)
    finally:
        await context.close()
