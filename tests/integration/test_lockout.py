"""Brute-force protection: lockout with back-off per company + e-mail, on record."""

from __future__ import annotations

import httpx

from crm.platform.lockout import FREE_ATTEMPTS
from crm.platform.services import Services
from tests.conftest import SignedUpTenant, TenantFactory, login


async def _guess(http: httpx.AsyncClient, tenant: SignedUpTenant, email: str, times: int) -> list[int]:
    return [(await login(http, tenant.slug, email, f"guess number {n}")).status_code for n in range(times)]


async def test_repeated_failures_lock_the_account_with_back_off(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    victim, other = await make_tenant(), await make_tenant()

    statuses = await _guess(http, victim, victim.email, FREE_ATTEMPTS)
    assert statuses == [401] * FREE_ATTEMPTS
    locked = await login(http, victim.slug, victim.email, victim.password)  # right password, too late
    assert locked.status_code == 429
    first_wait = int(locked.headers["retry-after"])
    assert 0 < first_wait <= 60
    assert locked.json()["code"] == "rate-limited"

    # Another failure while locked doubles nothing (refused before checking), but a failure
    # after the lock expires does: simulate the expiry and fail once more.
    await services.db.pool.execute(
        "UPDATE platform.login_failures SET locked_until = now() - interval '1 second' WHERE key = $1",
        f"{victim.slug}:{victim.email}",
    )
    assert (await _guess(http, victim, victim.email, 1)) == [401]
    second = await login(http, victim.slug, victim.email, victim.password)
    assert second.status_code == 429 and int(second.headers["retry-after"]) > 60

    # The other company, and another e-mail of the same company, are not affected.
    assert (await login(http, other.slug, other.email, other.password)).status_code == 200
    assert (await login(http, victim.slug, "someone.else@example.org", "whatever it is")).status_code == 401

    audit = (await http.get("/api/v1/audit", headers=victim.auth)).json()["items"]
    actions = [entry["action"] for entry in audit]
    assert actions.count("auth.login_locked") == 2
    assert any("locked_for_seconds" in entry["changes"] for entry in audit)
    assert all(entry["actor_label"] != other.email for entry in audit)


async def test_unknown_accounts_lock_the_same_way(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    """Whether the e-mail exists or not, the answers are the same: nothing to learn."""
    tenant = await make_tenant()
    known = await _guess(http, tenant, tenant.email, FREE_ATTEMPTS + 1)
    unknown = await _guess(http, tenant, "nobody@example.org", FREE_ATTEMPTS + 1)
    assert known == unknown == [401] * FREE_ATTEMPTS + [429]


async def test_a_successful_login_clears_the_count(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    tenant = await make_tenant()
    await _guess(http, tenant, tenant.email, FREE_ATTEMPTS - 1)
    assert (await login(http, tenant.slug, tenant.email, tenant.password)).status_code == 200
    assert await _guess(http, tenant, tenant.email, FREE_ATTEMPTS - 1) == [401] * (FREE_ATTEMPTS - 1)
    assert (await login(http, tenant.slug, tenant.email, tenant.password)).status_code == 200
