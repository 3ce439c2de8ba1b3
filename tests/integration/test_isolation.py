"""Two companies signed up over the API never see each other's users."""

from __future__ import annotations

import httpx

from tests.conftest import TenantFactory


async def test_each_tenant_sees_only_its_own_users(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    first = await make_tenant(edition="start")
    second = await make_tenant(edition="enterprise")

    first_users = (await http.get("/api/v1/users", headers=first.auth)).json()["items"]
    second_users = (await http.get("/api/v1/users", headers=second.auth)).json()["items"]

    assert [user["email"] for user in first_users] == [first.email]
    assert [user["email"] for user in second_users] == [second.email]
    # Both schemas number their users from 1: the same id must resolve to the caller's own user.
    for tenant, own in ((first, first.email), (second, second.email)):
        for user in first_users + second_users:
            response = await http.get(f"/api/v1/users/{user['id']}", headers=tenant.auth)
            assert response.status_code in (200, 404)
            if response.status_code == 200:
                assert response.json()["email"] == own
    me_first = (await http.get("/api/v1/me", headers=first.auth)).json()
    me_second = (await http.get("/api/v1/me", headers=second.auth)).json()
    assert me_first["tenant"]["slug"] == first.slug and me_first["user"]["email"] == first.email
    assert me_second["tenant"]["slug"] == second.slug and me_second["user"]["email"] == second.email
    assert me_first["edition"]["key"] == "start" and me_second["edition"]["key"] == "enterprise"


async def test_a_token_cannot_be_pointed_at_another_tenant(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    first = await make_tenant()
    second = await make_tenant()
    # Keep the secret of the first token, claim the second tenant's id: the secret is
    # looked up in the second tenant's schema and is not found there.
    _, _, first_secret = first.token.split("_", 2)
    _, second_id, _ = second.token.split("_", 2)
    forged = f"crm_{second_id}_{first_secret}"

    response = await http.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    # A tenant slug in the body of a login is checked against that tenant's own users.
    login = await http.post(
        "/api/v1/auth/token",
        json={
            "tenant": second.slug,
            "email": first.email,
            "password": first.password,
        },
    )
    assert login.status_code == 401
