"""The console's admin pages: users (list, live search, invite, roles and department,
deactivation ending sessions, password reset links, resent invitations, two-factor resets,
tokens), the invitation page, the department tree and the rights matrix. Real HTTP against
the app, real PostgreSQL, two companies in every test, each blind to the other."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest

from crm.admin_ui.texts import Texts
from crm.platform.editions import ACTIONS
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.totp import STEP_SECONDS
from tests.conftest import STAFF_PASSWORD, SignedUpTenant, Staff, TenantFactory, add_staff, login
from tests.integration.console_support import Browser, csrf_in
from tests.integration.helpers import tenant_of

RU, EN = Texts("ru"), Texts("en")


@pytest.fixture
async def browsers(base_url: str) -> AsyncIterator[list[Browser]]:
    """Browsers opened by a test (each with its own cookies and address), closed after it."""
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        await browser.close()


async def _browser(browsers: list[Browser], base_url: str) -> Browser:
    browser = Browser.open(base_url)
    browsers.append(browser)
    return browser


async def _admin(browsers: list[Browser], base_url: str, company: SignedUpTenant) -> Browser:
    browser = await _browser(browsers, base_url)
    assert (await browser.sign_in(company)).status_code == 303
    return browser


async def _staff_browser(browsers: list[Browser], base_url: str, company: SignedUpTenant, staff: Staff) -> Browser:
    browser = await _browser(browsers, base_url)
    assert (await browser.sign_in(company, email=staff.email, password=STAFF_PASSWORD)).status_code == 303
    return browser


async def _outbox(company: SignedUpTenant, to: str) -> list[str]:
    async with tenant_scope(await tenant_of(company)):
        rows = await scope_connection().fetch("SELECT body FROM mail_outbox WHERE to_address = $1 ORDER BY id", to)
    return [row["body"] for row in rows]


async def test_user_list_searches_live_and_shows_only_the_company(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(company="Ромашка"), await make_tenant(company="Лютик")
    anna = await add_staff(http, romashka, "anna", role="manager")
    await add_staff(http, romashka, "boris")
    zoya = await add_staff(http, lyutik, "zoya")
    admin = await _admin(browsers, base_url, romashka)

    page = await admin.get(f"/{romashka.slug}/admin/users")
    assert page.status_code == 200
    assert anna.email in page.text and f"boris@{romashka.slug}.example" in page.text
    assert zoya.email not in page.text and lyutik.email not in page.text
    assert RU("admin_users.status.active") in page.text and RU("admin_users.telegram.none") in page.text
    assert 'hx-get="/' + romashka.slug + '/admin/users"' in page.text and '<label for="users-q">' in page.text
    assert f'href="/{romashka.slug}/admin/users"' in page.text  # the menu lists the page

    # htmx asks for the results only; a plain GET with ?q= gives the whole page filtered.
    fragment = await admin.get(
        f"/{romashka.slug}/admin/users",
        params={"q": "ANNA"},
        headers={"HX-Request": "true", "HX-Target": "users-results"},
    )
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<section id="users-results"')
    assert anna.email in fragment.text and "boris@" not in fragment.text and "<html" not in fragment.text
    by_role = await admin.get(f"/{romashka.slug}/admin/users", params={"role": "manager"})
    assert anna.email in by_role.text and "boris@" not in by_role.text
    # Someone of the other company is not found here by any search, nor opened by their id
    # (ids are per company: the same number here is someone else, or nobody).
    assert zoya.email not in (await admin.get(f"/{romashka.slug}/admin/users", params={"q": "zoya"})).text
    assert zoya.email not in (await admin.get(f"/{romashka.slug}/admin/users/{zoya.id}")).text
    assert (await admin.get(f"/{romashka.slug}/admin/users/999999")).status_code == 404

    # The other company's admin sees only their own people.
    theirs = await _admin(browsers, base_url, lyutik)
    listed = await theirs.get(f"/{lyutik.slug}/admin/users")
    assert zoya.email in listed.text and anna.email not in listed.text
    assert anna.email not in (await theirs.get(f"/{lyutik.slug}/admin/users/{anna.id}")).text


async def test_invite_and_accept_the_invitation(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(company="Ромашка"), await make_tenant(company="Лютик")
    admin = await _admin(browsers, base_url, romashka)
    invite = f"/{romashka.slug}/admin/users/invite"

    form = await admin.get(invite)
    assert form.status_code == 200 and '<label for="email">' in form.text
    bad = await admin.submit(invite, invite, {"email": "not an address", "name": " ", "role": "manager"})
    assert bad.status_code == 422
    assert RU("admin_users.error.email") in bad.text and RU("admin_users.error.name") in bad.text
    assert 'aria-describedby="email-error"' in bad.text and 'value="not an address"' in bad.text
    taken = await admin.submit(invite, invite, {"email": romashka.email, "name": "Me", "role": "manager"})
    assert taken.status_code == 409 and RU("admin_users.error.email_taken") in taken.text

    sent = await admin.submit(
        invite, invite, {"email": "Vera@Example.org", "name": "Вера", "role": "operator", "locale": "ru"}
    )
    assert sent.status_code == 303
    user_url = sent.headers["location"]
    assert re.fullmatch(rf"/{romashka.slug}/admin/users/\d+\?done=invited", user_url)
    card = await admin.get(user_url)
    assert RU("admin_users.notice.invited") in card.text and RU("admin_users.status.invited") in card.text
    [body] = await _outbox(romashka, "vera@example.org")
    token = re.search(r"/invite/(\S+)", body).group(1)  # type: ignore[union-attr]

    # The link's page: the company by name, the invitee's e-mail, in the invitee's language.
    page = await admin.client.get(f"/invite/{token}", cookies={})
    assert page.status_code == 200 and RU("admin_invite.heading", company="Ромашка") in page.text
    assert "vera@example.org" in page.text and 'autocomplete="new-password"' in page.text
    stranger = await _browser(browsers, base_url)
    assert (
        await stranger.client.post(f"/invite/{token}", data={"password": "silver birch morning"})
    ).status_code == 403
    weak = await stranger.client.post(
        f"/invite/{token}", data={"_csrf": csrf_in(page.text), "name": "Вера", "password": "short"}
    )
    assert weak.status_code == 422 and RU("admin_invite.error.short") in weak.text
    forged = await stranger.get(f"/invite/{token[:-3]}AAA")
    assert forged.status_code == 410 and RU("admin_invite.bad_link") not in forged.text  # English for this browser
    assert EN("admin_invite.bad_link") in forged.text

    accepted = await stranger.client.post(
        f"/invite/{token}",
        data={"_csrf": csrf_in(page.text), "name": "Вера Иванова", "password": "silver birch morning"},
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == f"/{romashka.slug}/login"
    again = await stranger.client.post(
        f"/invite/{token}", data={"_csrf": csrf_in(page.text), "name": "X", "password": "another long one"}
    )
    assert again.status_code == 410
    signed_in = await stranger.sign_in(romashka, email="vera@example.org", password="silver birch morning")
    assert signed_in.status_code == 303
    assert RU("dashboard.hello", name="Вера Иванова") in (await stranger.get(f"/{romashka.slug}/")).text

    # The other company never sees her.
    theirs = await _admin(browsers, base_url, lyutik)
    assert "vera@example.org" not in (await theirs.get(f"/{lyutik.slug}/admin/users")).text
    assert (await login(http, lyutik.slug, "vera@example.org", "silver birch morning")).status_code == 401


async def test_a_role_without_the_right_sees_403_pages(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    manager = await add_staff(http, romashka, "manager", role="manager")
    other = await add_staff(http, romashka, "other")
    browser = await _staff_browser(browsers, base_url, romashka, manager)
    slug = romashka.slug

    home = await browser.get(f"/{slug}/")
    assert f'href="/{slug}/admin/users"' in home.text and f'href="/{slug}/admin/roles"' not in home.text
    assert (await browser.get(f"/{slug}/admin/roles")).status_code == 403
    assert (await browser.get(f"/{slug}/admin/roles/manager")).status_code == 403
    assert (await browser.get(f"/{slug}/admin/users/invite")).status_code == 403
    # The pages they may read show no buttons for what they may not do (their language: English).
    departments = await browser.get(f"/{slug}/admin/departments")
    assert departments.status_code == 200 and EN("admin_departments.add") not in departments.text
    assert EN("admin_departments.title") in departments.text
    users = await browser.get(f"/{slug}/admin/users")
    assert users.status_code == 200 and f"/{slug}/admin/users/invite" not in users.text
    # Their own card is read-only: no roles form, no deactivation; their own sessions are listed.
    own = await browser.get(f"/{slug}/admin/users/{manager.id}")
    assert own.status_code == 200 and 'name="role"' not in own.text and "/deactivate" not in own.text
    assert EN("admin_users.token.this_session") in own.text
    # A department scope without a department is their own record only.
    assert (await browser.get(f"/{slug}/admin/users/{other.id}")).status_code == 404
    # Posting anyway (with a valid form token) is refused the same way.
    token = csrf_in(users.text)
    for path, fields in (
        (f"/{slug}/admin/users/invite", {"email": "x@example.org", "name": "X", "role": "admin"}),
        (f"/{slug}/admin/departments", {"name": "Mine"}),
        (f"/{slug}/admin/roles/manager", {"audit.read": "all"}),
        (f"/{slug}/admin/users/{other.id}/deactivate", {}),
        (f"/{slug}/admin/users/{other.id}", {"role": "admin"}),
    ):
        refused = await browser.client.post(path, data={"_csrf": token, **fields})
        assert refused.status_code == 403, path
        assert RU("error.forbidden") in refused.text or EN("error.forbidden") in refused.text
    # Without the form token an admin's post is refused too.
    admin = await _admin(browsers, base_url, romashka)
    forged = await admin.client.post(f"/{slug}/admin/users/{other.id}/deactivate")
    assert forged.status_code == 403
    assert (await http.get(f"/api/v1/users/{other.id}", headers=romashka.auth)).json()["is_active"] is True
    # The other company's admin reaches none of this company's users.
    theirs = await _admin(browsers, base_url, lyutik)
    cross = await theirs.submit(f"/{lyutik.slug}/admin/users", f"/{lyutik.slug}/admin/users/{other.id}/deactivate", {})
    assert cross.status_code == 404


async def test_edit_access_deactivate_and_credentials(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    slug = romashka.slug
    pavel = await add_staff(http, romashka, "pavel")
    sales = await http.post("/api/v1/departments", json={"name": "Продажи"}, headers=romashka.auth)
    sales_id = sales.json()["id"]
    admin = await _admin(browsers, base_url, romashka)
    card_url = f"/{slug}/admin/users/{pavel.id}"

    card = await admin.get(card_url)
    assert card.status_code == 200 and '<label for="role">' in card.text and "Продажи" in card.text
    saved = await admin.submit(
        card_url, card_url, {"role": "manager", "extra_roles": "operator", "department_id": str(sales_id)}
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{card_url}?done=saved"
    api = (await http.get(f"/api/v1/users/{pavel.id}", headers=romashka.auth)).json()
    assert api["roles"] == ["manager", "operator"] and api["department_id"] == sales_id
    bad = await admin.submit(card_url, card_url, {"role": "emperor", "department_id": "999999"})
    assert bad.status_code == 422
    assert RU("admin_users.error.roles") in bad.text and RU("admin_users.error.department") in bad.text
    assert 'aria-describedby="roles-error"' in bad.text

    # Deactivation ends the user's console session for good; their API token only pauses.
    pavel_browser = await _staff_browser(browsers, base_url, romashka, pavel)
    assert (await pavel_browser.get(f"/{slug}/")).status_code == 200
    off = await admin.submit(card_url, f"{card_url}/deactivate", {})
    assert off.status_code == 303 and off.headers["location"] == f"{card_url}?done=deactivated"
    assert (await pavel_browser.get(f"/{slug}/")).status_code == 303
    assert (await http.get("/api/v1/me", headers=pavel.auth)).status_code == 401
    on = await admin.submit(card_url, f"{card_url}/reactivate", {})
    assert on.status_code == 303
    assert (await pavel_browser.get(f"/{slug}/")).status_code == 303  # the session stays ended
    assert (await http.get("/api/v1/me", headers=pavel.auth)).status_code == 200
    async with tenant_scope(await tenant_of(romashka)):
        sessions = await scope_connection().fetch(
            "SELECT revoked_at FROM access_tokens WHERE user_id = $1 AND name = 'console'", pavel.id
        )
    assert sessions and all(row["revoked_at"] is not None for row in sessions)
    myself = (await http.get("/api/v1/me", headers=romashka.auth)).json()["user"]["id"]
    refused = await admin.submit(f"/{slug}/admin/users/{myself}", f"/{slug}/admin/users/{myself}/deactivate", {})
    assert refused.status_code == 422 and RU("admin_users.error.self") in refused.text

    # A password reset link goes to the user's own address.
    reset = await admin.submit(card_url, f"{card_url}/password-reset", {})
    assert reset.status_code == 303 and reset.headers["location"] == f"{card_url}?done=reset_sent"
    [body] = await _outbox(romashka, pavel.email)
    assert "/reset/" in body

    # Their tokens: listed without secrets, revocable; a revoked one stops working.
    card = await admin.get(card_url)
    assert RU("admin_users.tokens") in card.text and "crm_" not in card.text
    token_ids = [int(match) for match in re.findall(rf"/admin/users/{pavel.id}/tokens/(\d+)/revoke", card.text)]
    assert len(token_ids) == 1  # the API token; the ended console session is only counted
    revoked = await admin.submit(card_url, f"{card_url}/tokens/{token_ids[0]}/revoke", {})
    assert revoked.status_code == 303
    assert (await http.get("/api/v1/me", headers=pavel.auth)).status_code == 401

    # None of it reaches the other company, nor can its admin act on this one's user.
    theirs = await _admin(browsers, base_url, lyutik)
    own_card = f"/{lyutik.slug}/admin/users"
    for action in ("password-reset", "reactivate", f"tokens/{token_ids[0]}/revoke"):
        cross = await theirs.submit(own_card, f"/{lyutik.slug}/admin/users/{pavel.id}/{action}", {})
        assert cross.status_code == 404, action
    assert len(await _outbox(romashka, pavel.email)) == 1
    lyutik_users = (await http.get("/api/v1/users", headers=lyutik.auth)).json()["items"]
    assert [user["email"] for user in lyutik_users] == [lyutik.email]


async def _turn_on_two_factor(http: httpx.AsyncClient, staff: Staff) -> None:
    """Two-factor login on for ``staff`` through the API, as they would do it themselves."""
    set_up = await http.post("/api/v1/me/two-factor", json={"password": STAFF_PASSWORD}, headers=staff.auth)
    assert set_up.status_code == 201, set_up.text
    code = pyotp.TOTP(set_up.json()["secret"], interval=STEP_SECONDS).now()
    confirmed = await http.post("/api/v1/me/two-factor/confirm", json={"code": code}, headers=staff.auth)
    assert confirmed.status_code == 204, confirmed.text


async def test_resend_an_invitation(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    slug = romashka.slug
    manager = await add_staff(http, romashka, "manager", role="manager")
    invited = await http.post(
        "/api/v1/users/invitations",
        json={"email": "vera@example.org", "name": "Вера", "role": "operator", "locale": "ru"},
        headers=romashka.auth,
    )
    vera = invited.json()["user_id"]
    card_url = f"/{slug}/admin/users/{vera}"
    resend = f"{card_url}/invitation/resend"
    admin = await _admin(browsers, base_url, romashka)

    card = await admin.get(card_url)
    assert RU("admin_users.resend_invite") in card.text and f'action="{resend}"' in card.text
    assert RU("admin_users.resend_invite_hint", days=7) in card.text
    sent = await admin.submit(card_url, resend, {})
    assert sent.status_code == 303 and sent.headers["location"] == f"{card_url}?done=invitation_resent"
    assert RU("admin_users.notice.invitation_resent") in (await admin.get(sent.headers["location"])).text
    first, second = [re.search(r"/invite/(\S+)", body).group(1) for body in await _outbox(romashka, "vera@example.org")]  # type: ignore[union-attr]
    assert (await admin.client.get(f"/invite/{first}")).status_code == 410  # the old link stopped working
    assert (await admin.client.get(f"/invite/{second}")).status_code == 200

    # Expired: still shown as invited, and resent the same way.
    async with tenant_scope(await tenant_of(romashka)):
        await scope_connection().execute("UPDATE invitations SET expires_at = now() - interval '1 minute'")
    assert f'action="{resend}"' in (await admin.get(card_url)).text
    assert (await admin.submit(card_url, resend, {})).status_code == 303
    *_, third = await _outbox(romashka, "vera@example.org")
    token = re.search(r"/invite/(\S+)", third).group(1)  # type: ignore[union-attr]
    accepted = await http.post("/api/v1/invitations/accept", json={"token": token, "password": "silver birch morning"})
    assert accepted.status_code == 200
    # Joined: no button, and a stale form is answered on the page itself.
    card = await admin.get(card_url)
    assert f'action="{resend}"' not in card.text and RU("admin_users.status.active") in card.text
    stale = await admin.client.post(resend, data={"_csrf": csrf_in(card.text)})
    assert stale.status_code == 409 and RU("admin_users.error.not_invited") in stale.text

    # Without users.create: 403 page; without the form token: 403; the other company: 404.
    pending = await http.post(
        "/api/v1/users/invitations",
        json={"email": "gleb@example.org", "name": "Глеб", "role": "operator"},
        headers=romashka.auth,
    )
    gleb = pending.json()["user_id"]
    manager_browser = await _staff_browser(browsers, base_url, romashka, manager)
    own = await manager_browser.get(f"/{slug}/admin/users/{manager.id}")
    refused = await manager_browser.client.post(
        f"/{slug}/admin/users/{gleb}/invitation/resend", data={"_csrf": csrf_in(own.text)}
    )
    assert refused.status_code == 403 and EN("error.forbidden") in refused.text
    assert (await admin.client.post(f"/{slug}/admin/users/{gleb}/invitation/resend")).status_code == 403
    theirs = await _admin(browsers, base_url, lyutik)
    cross = await theirs.submit(
        f"/{lyutik.slug}/admin/users", f"/{lyutik.slug}/admin/users/{gleb}/invitation/resend", {}
    )
    assert cross.status_code == 404
    assert len(await _outbox(romashka, "gleb@example.org")) == 1
    assert await _outbox(lyutik, "gleb@example.org") == []
    audit = (await http.get("/api/v1/audit", headers=romashka.auth)).json()["items"]
    resent = [entry for entry in audit if entry["action"] == "user.invitation_resent"]
    assert len(resent) == 2 and {entry["channel"] for entry in resent} == {"console"}
    assert "user.invitation_resent" not in str((await http.get("/api/v1/audit", headers=lyutik.auth)).json())


async def test_reset_two_factor_login(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    slug = romashka.slug
    pavel = await add_staff(http, romashka, "pavel")
    manager = await add_staff(http, romashka, "manager", role="manager")
    await _turn_on_two_factor(http, pavel)
    card_url = f"/{slug}/admin/users/{pavel.id}"
    reset = f"{card_url}/two-factor/reset"
    admin = await _admin(browsers, base_url, romashka)

    card = await admin.get(card_url)
    assert RU("admin_users.two_factor") in card.text and RU("admin_users.two_factor.on") in card.text
    assert f'action="{reset}"' in card.text and RU("admin_users.reset_two_factor_hint") in card.text
    assert (await login(http, slug, pavel.email, STAFF_PASSWORD)).status_code == 401  # a code is asked for

    # Without users.update: 403 page; without the form token: 403; the other company: 404.
    manager_browser = await _staff_browser(browsers, base_url, romashka, manager)
    own = await manager_browser.get(f"/{slug}/admin/users/{manager.id}")
    assert EN("admin_users.two_factor.off") in own.text and "/two-factor/reset" not in own.text
    refused = await manager_browser.client.post(reset, data={"_csrf": csrf_in(own.text)})
    assert refused.status_code == 403 and EN("error.forbidden") in refused.text
    assert (await admin.client.post(reset)).status_code == 403
    theirs = await _admin(browsers, base_url, lyutik)
    cross = await theirs.submit(
        f"/{lyutik.slug}/admin/users", f"/{lyutik.slug}/admin/users/{pavel.id}/two-factor/reset", {}
    )
    assert cross.status_code == 404
    assert (await login(http, slug, pavel.email, STAFF_PASSWORD)).status_code == 401

    done = await admin.submit(card_url, reset, {})
    assert done.status_code == 303 and done.headers["location"] == f"{card_url}?done=two_factor_reset"
    card = await admin.get(done.headers["location"])
    assert RU("admin_users.notice.two_factor_reset") in card.text and RU("admin_users.two_factor.off") in card.text
    assert f'action="{reset}"' not in card.text
    assert (await login(http, slug, pavel.email, STAFF_PASSWORD)).status_code == 200
    audit = (await http.get("/api/v1/audit", headers=romashka.auth)).json()["items"]
    [entry] = [entry for entry in audit if entry["action"] == "user.two_factor_reset"]
    assert entry["channel"] == "console"
    assert "user.two_factor_reset" not in str((await http.get("/api/v1/audit", headers=lyutik.auth)).json())


async def test_a_full_edition_refuses_invitations_and_reactivations(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    small, other = await make_tenant(edition="start"), await make_tenant(edition="start")
    first = await add_staff(http, small, "first")
    await add_staff(http, small, "second")  # three of three seats taken
    admin = await _admin(browsers, base_url, small)
    invite = f"/{small.slug}/admin/users/invite"
    full = await admin.submit(invite, invite, {"email": "more@example.org", "name": "More", "role": "operator"})
    assert full.status_code == 402 and RU("admin_users.error.limit", limit=3) in full.text
    card = f"/{small.slug}/admin/users/{first.id}"
    assert (await admin.submit(card, f"{card}/deactivate", {})).status_code == 303
    # The freed seat goes to someone else; the deactivated user cannot come back past the limit.
    assert (
        await admin.submit(invite, invite, {"email": "new@example.org", "name": "New", "role": "operator"})
    ).status_code == 303
    back = await admin.submit(card, f"{card}/reactivate", {})
    assert back.status_code == 402 and RU("admin_users.error.limit", limit=3) in back.text
    # The other company's seats are its own.
    theirs = await _admin(browsers, base_url, other)
    other_invite = f"/{other.slug}/admin/users/invite"
    assert (
        await theirs.submit(other_invite, other_invite, {"email": "new@example.org", "name": "N", "role": "operator"})
    ).status_code == 303


async def test_department_tree_rules(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    romashka, lyutik = await make_tenant(), await make_tenant()
    slug = romashka.slug
    admin = await _admin(browsers, base_url, romashka)
    page = f"/{slug}/admin/departments"

    assert (await admin.submit(page, page, {"name": "  "})).status_code == 422
    created = await admin.submit(page, page, {"name": "Продажи"})
    assert created.status_code == 303
    tree = (await http.get("/api/v1/departments", headers=romashka.auth)).json()["items"]
    sales = tree[0]["id"]
    assert (await admin.submit(page, page, {"name": "Север", "parent_id": str(sales)})).status_code == 303
    north = next(
        d["id"]
        for d in (await http.get("/api/v1/departments", headers=romashka.auth)).json()["items"]
        if d["name"] == "Север"
    )
    shown = await admin.get(page)
    assert shown.text.index("Продажи") < shown.text.index("Север") and 'class="depth-1"' in shown.text

    # Never under itself or below itself; renaming and moving to the top work.
    cycle = await admin.submit(page, f"{page}/{sales}", {"name": "Продажи", "parent_id": str(north)})
    assert cycle.status_code == 422 and RU("admin_departments.error.cycle") in cycle.text
    renamed = await admin.submit(page, f"{page}/{north}", {"name": "Продажи — Север", "parent_id": ""})
    assert renamed.status_code == 303
    moved = {d["id"]: d for d in (await http.get("/api/v1/departments", headers=romashka.auth)).json()["items"]}
    assert moved[north] == {"id": north, "name": "Продажи — Север", "parent_id": None}
    # The API answers by the same rules.
    api_cycle = await http.patch(f"/api/v1/departments/{sales}", json={"parent_id": sales}, headers=romashka.auth)
    assert api_cycle.status_code == 422 and api_cycle.json()["errors"][0]["field"] == "parent_id"
    assert (await http.patch(f"/api/v1/departments/{north}", json={"parent_id": sales}, headers=romashka.auth)).json()[
        "parent_id"
    ] == sales

    # Deleting: not while departments or users are in it.
    has_children = await admin.submit(page, f"{page}/{sales}/delete", {})
    assert has_children.status_code == 409 and RU("admin_departments.error.has_children") in has_children.text
    worker = await add_staff(http, romashka, "worker")
    await http.patch(f"/api/v1/users/{worker.id}", json={"department_id": north}, headers=romashka.auth)
    has_users = await admin.submit(page, f"{page}/{north}/delete", {})
    assert has_users.status_code == 409 and RU("admin_departments.error.has_users") in has_users.text
    assert (await http.delete(f"/api/v1/departments/{north}", headers=romashka.auth)).status_code == 409
    await http.patch(f"/api/v1/users/{worker.id}", json={"department_id": None}, headers=romashka.auth)
    assert (await admin.submit(page, f"{page}/{north}/delete", {})).status_code == 303
    assert (await http.delete(f"/api/v1/departments/{sales}", headers=romashka.auth)).status_code == 204
    assert (await http.get("/api/v1/departments", headers=romashka.auth)).json()["items"] == []
    actions = [e["action"] for e in (await http.get("/api/v1/audit", headers=romashka.auth)).json()["items"]]
    assert {"department.created", "department.updated", "department.deleted"} <= set(actions)

    # The other company: its own empty tree; this company's ids mean nothing there.
    await http.post("/api/v1/departments", json={"name": "Склад"}, headers=romashka.auth)
    theirs = await _admin(browsers, base_url, lyutik)
    their_page = await theirs.get(f"/{lyutik.slug}/admin/departments")
    assert "Склад" not in their_page.text and RU("admin_departments.empty") in their_page.text
    warehouse = (await http.get("/api/v1/departments", headers=romashka.auth)).json()["items"][0]["id"]
    cross = await theirs.submit(
        f"/{lyutik.slug}/admin/departments", f"/{lyutik.slug}/admin/departments/{warehouse}/delete", {}
    )
    assert cross.status_code == 404


async def test_rights_matrix_follows_the_edition(
    make_tenant: TenantFactory, http: httpx.AsyncClient, base_url: str, browsers: list[Browser]
) -> None:
    start, business, enterprise = (
        await make_tenant(edition="start"),
        await make_tenant(edition="business"),
        await make_tenant(edition="enterprise"),
    )
    manager = await add_staff(http, business, "manager", role="manager")
    admin = await _admin(browsers, base_url, business)
    roles = f"/{business.slug}/admin/roles"
    listing = await admin.get(roles)
    assert listing.status_code == 200 and f'href="{roles}/manager"' in listing.text
    assert RU("admin_roles.custom_in_other_plans", plans="Корпоративный") in listing.text

    matrix = await admin.get(f"{roles}/manager")
    assert matrix.status_code == 200
    assert '<label class="visually-hidden" for="cell-clients-read">' in matrix.text
    assert re.search(r'name="clients\.read">.*?<option value="own" selected>', matrix.text, re.S)
    # Grant the manager the audit log: their very next API request may read it.
    assert (await http.get("/api/v1/audit", headers=manager.auth)).status_code == 403
    before = {role["key"]: role for role in (await http.get("/api/v1/roles", headers=business.auth)).json()["items"]}
    current = {
        f"{entity}.{action}": scope
        for entity, actions in before["manager"]["rights"].items()
        for action, scope in actions.items()
    }
    saved = await admin.submit(f"{roles}/manager", f"{roles}/manager", {**current, "audit.read": "all"})
    assert saved.status_code == 303
    assert (await http.get("/api/v1/audit", headers=manager.auth)).status_code == 200
    after = {role["key"]: role for role in (await http.get("/api/v1/roles", headers=business.auth)).json()["items"]}
    assert after["manager"]["rights"]["audit"] == {"read": "all"}
    assert after["manager"]["rights"]["clients"] == {"read": "own", "create": "own", "update": "own"}
    # Given roles.read only, the manager sees the matrix but cannot change it.
    read_only = await admin.submit(
        f"{roles}/manager", f"{roles}/manager", {**current, "audit.read": "all", "roles.read": "all"}
    )
    assert read_only.status_code == 303
    manager_browser = await _staff_browser(browsers, base_url, business, manager)
    seen = await manager_browser.get(f"{roles}/manager")
    assert seen.status_code == 200 and "<select" not in seen.text and EN("common.save") not in seen.text
    refused = await manager_browser.client.post(f"{roles}/manager", data={"_csrf": csrf_in(seen.text)})
    assert refused.status_code == 403
    # An unknown scope is named; the admin role keeps its fixed rights (shown, not editable).
    nonsense = await admin.submit(f"{roles}/manager", f"{roles}/manager", {"clients.read": "galaxy"})
    assert nonsense.status_code == 422 and RU("admin_roles.error.rights") in nonsense.text
    admin_matrix = await admin.get(f"{roles}/admin")
    assert 'name="users.read" value="all"' in admin_matrix.text and 'id="cell-users-read"' not in admin_matrix.text
    lockout = await admin.client.post(
        f"{roles}/admin", data={"_csrf": csrf_in(admin_matrix.text), "users.read": "none"}
    )
    assert lockout.status_code == 422
    # Custom roles are not in this edition: no form, and a post gets the plan page.
    assert RU("admin_roles.add") not in listing.text
    assert (await admin.submit(roles, roles, {"key": "auditor", "name_ru": "А", "name_en": "A"})).status_code == 402

    # Start has no mailings: their rights are shown as kept and survive a save untouched.
    small = await _admin(browsers, base_url, start)
    small_roles = f"/{start.slug}/admin/roles"
    small_matrix = await small.get(f"{small_roles}/admin")
    assert 'id="rights-mailings" class="not-in-plan"' in small_matrix.text
    assert 'id="cell-mailings-read"' not in small_matrix.text
    fixed = {f"{entity}.{action}": "all" for entity in ("users", "roles", "settings") for action in ACTIONS}
    posted = await small.client.post(
        f"{small_roles}/admin",
        data={"_csrf": csrf_in(small_matrix.text), **fixed, "clients.read": "all", "mailings.read": "none"},
    )
    assert posted.status_code == 303
    kept = {r["key"]: r for r in (await http.get("/api/v1/roles", headers=start.auth)).json()["items"]}["admin"]
    assert kept["rights"]["clients"] == {"read": "all"}  # what the form said
    assert kept["rights"]["mailings"] == {action: "all" for action in ACTIONS}  # not in the plan: untouched

    # Enterprise adds roles of its own, starting from another role's rights.
    big = await _admin(browsers, base_url, enterprise)
    big_roles = f"/{enterprise.slug}/admin/roles"
    taken = await big.submit(big_roles, big_roles, {"key": "manager", "name_ru": "М", "name_en": "M"})
    assert taken.status_code == 409 and RU("admin_roles.error.key_taken") in taken.text
    bad = await big.submit(big_roles, big_roles, {"key": "X", "name_ru": "", "name_en": "A"})
    assert bad.status_code == 422 and RU("admin_roles.error.key") in bad.text
    created = await big.submit(
        big_roles,
        big_roles,
        {"key": "controller", "name_ru": "Контролёр", "name_en": "Controller", "copy_from": "manager"},
    )
    assert created.status_code == 303 and created.headers["location"] == f"{big_roles}/controller?done=created"
    made = {r["key"]: r for r in (await http.get("/api/v1/roles", headers=enterprise.auth)).json()["items"]}
    assert made["controller"]["rights"] == made["manager"]["rights"] and made["controller"]["is_system"] is False

    # Each company's roles are its own.
    business_roles = {r["key"]: r for r in (await http.get("/api/v1/roles", headers=business.auth)).json()["items"]}
    assert "controller" not in business_roles
    assert "audit" in business_roles["manager"]["rights"] and "audit" not in made["manager"]["rights"]
    assert (await big.get(f"{big_roles}/no_such_role")).status_code == 404
