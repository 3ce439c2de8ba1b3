"""Tokens: bound to one tenant, hashed at rest, revocable; one answer for every failed login."""

from __future__ import annotations

import hashlib

import httpx

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import tenant_scope
from crm.tenants.users.tables import AccessToken, User
from tests.conftest import TenantFactory, login


async def test_me_describes_the_user_tenant_and_edition(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    tenant = await make_tenant(edition="start")
    response = await http.get("/api/v1/me", headers=tenant.auth)
    assert response.status_code == 200
    me = response.json()
    assert me["user"]["email"] == tenant.email and me["user"]["role"] == "admin"
    assert "password_hash" not in me["user"]
    assert me["tenant"] | {"name": "Acme Trading"} == me["tenant"]
    assert me["edition"]["key"] == "start"
    assert "mailings" not in me["edition"]["modules"] and "deals" in me["edition"]["modules"]
    assert me["edition"]["limits"]["users"] == 3


async def test_failed_logins_all_look_the_same(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    first, second = await make_tenant(), await make_tenant()
    attempts = [
        await login(http, first.slug, first.email, "wrong password!!"),
        await login(http, first.slug, "nobody@example.org", first.password),
        await login(http, "no-such-company", first.email, first.password),
        await login(http, second.slug, first.email, first.password),
    ]
    assert {response.status_code for response in attempts} == {401}
    assert len({response.json()["detail"] for response in attempts}) == 1
    assert all("www-authenticate" in response.headers for response in attempts)


async def test_tokens_are_stored_hashed(make_tenant: TenantFactory, services: Services) -> None:
    signed_up = await make_tenant()
    tenant = await load_tenant(slug=signed_up.slug)
    assert tenant is not None
    secret = signed_up.token.split("_", 2)[2]
    async with tenant_scope(tenant):
        stored = await AccessToken.select(AccessToken.token_hash).output(as_list=True)
    assert stored == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in stored[0]


async def test_a_revoked_token_stops_working(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    tenant = await make_tenant()
    assert (await http.delete("/api/v1/auth/token", headers=tenant.auth)).status_code == 204
    response = await http.get("/api/v1/me", headers=tenant.auth)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_deactivated_user_is_refused_on_the_next_request(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    signed_up = await make_tenant()
    tenant = await load_tenant(slug=signed_up.slug)
    assert tenant is not None
    assert (await http.get("/api/v1/me", headers=signed_up.auth)).status_code == 200
    async with tenant_scope(tenant):
        await User.update({User.is_active: False}).where(User.email == signed_up.email)
    assert (await http.get("/api/v1/me", headers=signed_up.auth)).status_code == 401
    assert (await login(http, signed_up.slug, signed_up.email, signed_up.password)).status_code == 401


async def test_a_suspended_tenant_is_refused(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    suspended, other = await make_tenant(), await make_tenant()
    await services.db.pool.execute("UPDATE platform.tenants SET status = 'suspended' WHERE slug = $1", suspended.slug)
    response = await http.get("/api/v1/me", headers=suspended.auth)
    assert response.status_code == 403
    assert response.json()["tenant_status"] == "suspended"
    assert (await http.get("/api/v1/me", headers=other.auth)).status_code == 200


async def test_requests_without_a_token_get_401_problems(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}):
        response = await http.get("/api/v1/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["type"].endswith("/unauthorized")


async def test_an_old_cost_hash_is_upgraded_at_login(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    from argon2 import PasswordHasher

    signed_up, other = await make_tenant(), await make_tenant()
    tenant = await load_tenant(slug=signed_up.slug)
    assert tenant is not None
    old = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4).hash(signed_up.password)
    async with tenant_scope(tenant):
        await User.update({User.password_hash: old}).where(User.email == signed_up.email)

    assert (await login(http, signed_up.slug, signed_up.email, signed_up.password)).status_code == 200
    async with tenant_scope(tenant):
        stored = await User.select(User.password_hash).where(User.email == signed_up.email).first()
    assert stored is not None and stored["password_hash"] != old
    assert "m=19456,t=2,p=1" in stored["password_hash"]
    assert (await login(http, signed_up.slug, signed_up.email, signed_up.password)).status_code == 200
    # The upgrade touched only this company: the other's admin logs in as before, and this
    # admin's e-mail means nothing there.
    assert (await login(http, other.slug, other.email, other.password)).status_code == 200
    assert (await login(http, other.slug, signed_up.email, signed_up.password)).status_code == 401
