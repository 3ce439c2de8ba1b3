"""Optional TOTP two-factor login: set up, confirm, log in with a code once, turn off, reset."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pyotp

from crm.platform.auth import load_tenant
from crm.platform.tenancy import tenant_scope
from crm.platform.totp import STEP_SECONDS, time_step
from crm.tenants.users.tables import User
from tests.conftest import STAFF_PASSWORD, Staff, TenantFactory, add_staff, login


def code_at(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret, interval=STEP_SECONDS).at(step * STEP_SECONDS))


async def _enable(http: httpx.AsyncClient, staff: Staff) -> tuple[str, int]:
    """Turn two-factor on for ``staff``; return the secret and the step its first code used."""
    set_up = await http.post("/api/v1/me/two-factor", json={"password": STAFF_PASSWORD}, headers=staff.auth)
    assert set_up.status_code == 201, set_up.text
    secret = set_up.json()["secret"]
    assert set_up.json()["otpauth_uri"].startswith("otpauth://totp/")
    step = time_step(datetime.now(UTC))
    confirmed = await http.post(
        "/api/v1/me/two-factor/confirm", json={"code": code_at(secret, step)}, headers=staff.auth
    )
    assert confirmed.status_code == 204, confirmed.text
    return secret, step


async def test_login_asks_for_a_code_and_takes_each_code_once(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "careful")
    bystander = await add_staff(http, other, "careful")

    wrong_password = await http.post("/api/v1/me/two-factor", json={"password": "not it at all"}, headers=staff.auth)
    assert wrong_password.status_code == 422
    assert [e["field"] for e in wrong_password.json()["errors"]] == ["password"]
    secret, step = await _enable(http, staff)
    assert (await http.get("/api/v1/me/two-factor", headers=staff.auth)).json() == {"enabled": True, "pending": False}

    without = await login(http, company.slug, staff.email, STAFF_PASSWORD)
    assert without.status_code == 401
    assert without.json()["type"].endswith("/two-factor-required")
    assert [e["field"] for e in without.json()["errors"]] == ["totp_code"]
    wrong = await login(http, company.slug, staff.email, STAFF_PASSWORD, totp_code="000000")
    assert wrong.status_code == 401
    # The confirmation's code was spent; the next step's code (within the drift window) passes once.
    replayed = await login(http, company.slug, staff.email, STAFF_PASSWORD, totp_code=code_at(secret, step))
    assert replayed.status_code == 401
    fresh = code_at(secret, step + 1)
    assert (await login(http, company.slug, staff.email, STAFF_PASSWORD, totp_code=fresh)).status_code == 200
    assert (await login(http, company.slug, staff.email, STAFF_PASSWORD, totp_code=fresh)).status_code == 401
    # A wrong password with a right code is still a wrong password.
    assert (await login(http, company.slug, staff.email, "wrong password!", totp_code=fresh)).status_code == 401

    # The other company's user with the same name is untouched by any of this.
    assert (await http.get("/api/v1/me/two-factor", headers=bystander.auth)).json()["enabled"] is False
    assert (await login(http, other.slug, bystander.email, STAFF_PASSWORD)).status_code == 200

    # The secret is stored encrypted, and neither it nor a code reaches the audit log.
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        stored = await User.select(User.totp_secret).where(User.id == staff.id).first()
    assert stored is not None and stored["totp_secret"].startswith("v1:") and secret not in stored["totp_secret"]
    log = (await http.get("/api/v1/audit", headers=company.auth, params={"limit": 200})).json()["items"]
    actions = [entry["action"] for entry in log]
    assert "user.two_factor_enabled" in actions
    assert {"reason": [None, "wrong two-factor code"]} in [
        e["changes"] for e in log if e["action"] == "auth.login_failed"
    ]
    assert secret not in str(log) and fresh not in str(log)


async def test_turning_off_needs_password_and_code_and_admins_can_reset(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "owner-of-phone")
    secret, step = await _enable(http, staff)

    refused = await http.post(
        "/api/v1/me/two-factor/disable", json={"password": STAFF_PASSWORD, "code": "123456"}, headers=staff.auth
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["code"]
    turned_off = await http.post(
        "/api/v1/me/two-factor/disable",
        json={"password": STAFF_PASSWORD, "code": code_at(secret, step + 1)},
        headers=staff.auth,
    )
    assert turned_off.status_code == 204
    assert (await login(http, company.slug, staff.email, STAFF_PASSWORD)).status_code == 200

    # On again, then the phone is lost: an admin of another company cannot reset it, theirs can.
    await _enable(http, staff)
    cross = await http.post(f"/api/v1/users/{staff.id}/two-factor/reset", headers=other.auth)
    assert cross.status_code == 404
    assert (await login(http, company.slug, staff.email, STAFF_PASSWORD)).status_code == 401
    # Staff may not reset anyone's, not even through the admin route for themselves.
    own = await http.post(f"/api/v1/users/{staff.id}/two-factor/reset", headers=staff.auth)
    assert own.status_code == 403
    reset = await http.post(f"/api/v1/users/{staff.id}/two-factor/reset", headers=company.auth)
    assert reset.status_code == 204
    assert (await login(http, company.slug, staff.email, STAFF_PASSWORD)).status_code == 200
    actions = [e["action"] for e in (await http.get("/api/v1/audit", headers=company.auth)).json()["items"]]
    assert {"user.two_factor_disabled", "user.two_factor_reset"} <= set(actions)
    assert "user.two_factor_reset" not in str((await http.get("/api/v1/audit", headers=other.auth)).json())
