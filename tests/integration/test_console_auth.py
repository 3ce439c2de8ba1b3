"""Signing in to the web console: per company, CSRF on every form, lockout, sign-out (here
and everywhere), forgotten password, and one company's session never opening another's
pages. Real HTTP against the app; two companies in every test."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from crm.admin_ui.texts import Texts
from crm.platform.app import create_app
from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.settings import Settings
from tests.conftest import TenantFactory
from tests.integration.console_support import Browser, csrf_in
from tests.support import serve

RU, EN = Texts("ru"), Texts("en")


@pytest.fixture
async def browser(base_url: str) -> AsyncIterator[Browser]:
    opened = Browser.open(base_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_sign_in_sets_a_safe_session_that_opens_only_its_company(
    make_tenant: TenantFactory, browser: Browser, base_url: str
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    # Not signed in: the dashboard sends the browser to sign in, keeping where it was going.
    away = await browser.get(f"/{romashka.slug}/")
    assert away.status_code == 303 and away.headers["location"] == f"/{romashka.slug}/login?next=/{romashka.slug}"

    page = await browser.get(f"/{romashka.slug}/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert RU("login.title", company="Ромашка") in page.text and 'autocomplete="current-password"' in page.text
    assert '<label for="password">' in page.text  # labelled fields

    # A post without the page's token is refused, whatever it carries.
    forged = await browser.client.post(
        f"/{romashka.slug}/login", data={"email": romashka.email, "password": romashka.password}
    )
    assert forged.status_code == 403 and "crm_session" not in forged.headers.get("set-cookie", "")

    wrong = await browser.sign_in(romashka, password="not the password")
    assert wrong.status_code == 401 and (RU("login.failed") in wrong.text or EN("login.failed") in wrong.text)

    signed_in = await browser.sign_in(romashka)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == f"/{romashka.slug}"
    cookie = signed_in.headers["set-cookie"]
    assert "crm_session=crm_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert f"Path=/{romashka.slug}" in cookie and "Secure" not in cookie  # plain http here

    home = await browser.get(f"/{romashka.slug}/")
    assert home.status_code == 200 and RU("dashboard.hello", name="Olga Petrova") in home.text
    assert home.headers["cache-control"] == "no-store" and home.headers["x-frame-options"] == "DENY"

    # The same browser's session is no session for the other company.
    other = await browser.get(f"/{lyutik.slug}/")
    assert other.status_code == 303 and other.headers["location"].startswith(f"/{lyutik.slug}/login")
    # Even sent to its path by hand.
    forced = await browser.client.get(
        f"/{lyutik.slug}/", cookies={"crm_session": cookie.split("crm_session=")[1].split(";")[0]}
    )
    assert forced.status_code == 303
    assert (await browser.get("/no-such-company/login")).status_code == 404

    # Signing out revokes the session on the server, not only in the browser.
    session = cookie.split("crm_session=")[1].split(";")[0]
    out = await browser.submit(f"/{romashka.slug}/", f"/{romashka.slug}/logout", {})
    assert out.status_code == 303 and out.headers["location"] == f"/{romashka.slug}/login?signed_out=1"
    stolen = httpx.AsyncClient(base_url=str(browser.client.base_url), cookies={"crm_session": session})
    async with stolen:
        assert (await stolen.get(f"/{romashka.slug}/")).status_code == 303


async def test_sign_out_everywhere_and_lockout(make_tenant: TenantFactory, base_url: str) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    laptop, phone, theirs = Browser.open(base_url), Browser.open(base_url), Browser.open(base_url)
    try:
        assert (await laptop.sign_in(romashka)).status_code == 303
        assert (await phone.sign_in(romashka)).status_code == 303
        assert (await theirs.sign_in(lyutik)).status_code == 303
        done = await laptop.submit(f"/{romashka.slug}/", f"/{romashka.slug}/logout-everywhere", {})
        assert done.status_code == 303
        assert (await phone.get(f"/{romashka.slug}/")).status_code == 303  # the phone's session ended too
        assert (await theirs.get(f"/{lyutik.slug}/")).status_code == 200  # the other company untouched

        # Repeated failures lock the account out with back-off (the API's own lockout).
        statuses = [(await phone.sign_in(romashka, password=f"wrong {n}")).status_code for n in range(6)]
        assert statuses[0] == 401 and statuses[-1] == 429
        locked = await phone.sign_in(romashka)
        assert locked.status_code == 429
        # The other company's admin, from the same address, is not locked out.
        await theirs.submit(f"/{lyutik.slug}/", f"/{lyutik.slug}/logout", {})
        assert (await theirs.sign_in(lyutik)).status_code == 303
    finally:
        for opened in (laptop, phone, theirs):
            await opened.close()


async def test_forgotten_password_by_mailed_link(make_tenant: TenantFactory, browser: Browser) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    for email in ("nobody@example.org", romashka.email):
        sent = await browser.submit(f"/{romashka.slug}/forgot", f"/{romashka.slug}/forgot", {"email": email})
        assert sent.status_code == 200 and "forgot.sent" not in sent.text
    tenant = await load_tenant(slug=romashka.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        [body] = [
            row["body"]
            for row in await scope_connection().fetch("SELECT body FROM mail_outbox WHERE kind = 'password_reset'")
        ]
    token = re.search(r"/reset/(\S+)", body).group(1)  # type: ignore[union-attr]
    page = await browser.get(f"/reset/{token}")
    assert page.status_code == 200 and 'autocomplete="new-password"' in page.text
    refused = await browser.client.post(f"/reset/{token}", data={"password": "a brand new password"})
    assert refused.status_code == 403  # no form token
    weak = await browser.client.post(f"/reset/{token}", data={"_csrf": csrf_in(page.text), "password": "short"})
    assert weak.status_code == 422
    done = await browser.client.post(
        f"/reset/{token}", data={"_csrf": csrf_in(page.text), "password": "a brand new password"}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/{romashka.slug}/login?reset=1"
    again = await browser.client.post(
        f"/reset/{token}", data={"_csrf": csrf_in(page.text), "password": "yet another password"}
    )
    assert again.status_code == 400
    assert (await browser.sign_in(romashka)).status_code == 401
    assert (await browser.sign_in(romashka, password="a brand new password")).status_code == 303
    assert (await browser.sign_in(lyutik)).status_code == 303  # the other company's admin untouched


async def test_a_company_subdomain_reaches_the_same_pages(
    make_tenant: TenantFactory, settings: Settings, services: Services
) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    on_domain = replace(settings, web=replace(settings.web, console_domain="crm.test"))
    async with serve(create_app(on_domain, services=services, run_timers=False)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Host": f"{romashka.slug}.crm.test"}) as client:
            page = await client.get("/login")
            assert page.status_code == 200 and 'action="/login"' in page.text
            signed_in = await client.post(
                "/login",
                data={"_csrf": csrf_in(page.text), "email": romashka.email, "password": romashka.password},
                cookies=page.cookies,
            )
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
            assert "Path=/;" in signed_in.headers["set-cookie"] or signed_in.headers["set-cookie"].endswith("Path=/")
            home = await client.get("/", cookies=signed_in.cookies)
            assert home.status_code == 200 and "Olga Petrova" in home.text
            # The other company's subdomain does not accept this session.
            other = await client.get("/", cookies=signed_in.cookies, headers={"Host": f"{lyutik.slug}.crm.test"})
            assert other.status_code == 303 and other.headers["location"] == "/login?next=/"


async def test_error_pages_speak_the_users_language(make_tenant: TenantFactory, browser: Browser) -> None:
    romashka = await make_tenant(company="Ромашка")  # its admin's profile language is ru
    lyutik = await make_tenant(company="Лютик", locale="en")
    assert (await browser.sign_in(romashka)).status_code == 303
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    missing = await browser.get(f"/{romashka.slug}/clients/999999", headers=english_browser)
    assert missing.status_code == 404 and RU("error.not_found") in missing.text
    # Before sign-in there is no profile: the browser's language decides.
    assert EN("error.not_found") in (await browser.get("/no-such-company/login", headers=english_browser)).text
    other = Browser.open(str(browser.client.base_url))
    try:
        assert (await other.sign_in(lyutik)).status_code == 303
        russian_browser = {"Accept-Language": "ru-RU"}
        page = await other.get(f"/{lyutik.slug}/clients/999999", headers=russian_browser)
        assert page.status_code == 404 and EN("error.not_found") in page.text
    finally:
        await other.close()


async def test_a_session_ends_on_the_server_after_its_days(make_tenant: TenantFactory, browser: Browser) -> None:
    romashka = await make_tenant(company="Ромашка")
    lyutik = await make_tenant(company="Лютик")
    assert (await browser.sign_in(romashka)).status_code == 303
    other = Browser.open(str(browser.client.base_url))
    try:
        assert (await other.sign_in(lyutik)).status_code == 303
        tenant = await load_tenant(slug=romashka.slug)
        assert tenant is not None
        async with tenant_scope(tenant):
            connection = scope_connection()
            lifetime = await connection.fetchval(
                "SELECT expires_at - created_at FROM access_tokens WHERE name = 'console' AND revoked_at IS NULL"
            )
            assert abs(lifetime.total_seconds() - 14 * 86400) < 60
            await connection.execute(
                "UPDATE access_tokens SET expires_at = now() - interval '1 second' WHERE name = 'console'"
            )
        # The browser still holds the cookie; the server no longer accepts it.
        assert (await browser.get(f"/{romashka.slug}/")).status_code == 303
        assert (await other.get(f"/{lyutik.slug}/")).status_code == 200  # the other company's session lives on
    finally:
        await other.close()
