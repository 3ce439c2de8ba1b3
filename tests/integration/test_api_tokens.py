"""API tokens for integrations: named, shown once, stored hashed, revocable, rate-limited."""

from __future__ import annotations

import httpx

from tests.conftest import TenantFactory
from tests.support import random_ip


async def test_create_use_list_and_revoke(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    owner, other = await make_tenant(), await make_tenant()
    created = await http.post("/api/v1/me/tokens", json={"name": "1C sync", "expires_in_days": 30}, headers=owner.auth)
    assert created.status_code == 201
    body = created.json()
    integration = {"Authorization": f"Bearer {body['token']}"}
    assert body["name"] == "1C sync" and body["expires_at"] is not None

    assert (await http.get("/api/v1/me", headers=integration)).json()["user"]["email"] == owner.email
    listed = (await http.get("/api/v1/me/tokens", headers=owner.auth)).json()["items"]
    assert [token["name"] for token in listed] == ["api", "1C sync"]
    assert body["token"] not in str(listed) and "token_hash" not in str(listed)

    # Another company's admin cannot revoke it (the id does not exist for them).
    assert (await http.delete(f"/api/v1/me/tokens/{body['id']}", headers=other.auth)).status_code == 404
    assert (await http.get("/api/v1/me", headers=integration)).status_code == 200
    assert (await http.delete(f"/api/v1/me/tokens/{body['id']}", headers=owner.auth)).status_code == 204
    assert (await http.get("/api/v1/me", headers=integration)).status_code == 401
    actions = [entry["action"] for entry in (await http.get("/api/v1/audit", headers=owner.auth)).json()["items"]]
    assert actions[:2] == ["auth.token_revoked", "token.created"]


async def test_bad_token_requests_name_the_field(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    owner = await make_tenant()
    response = await http.post("/api/v1/me/tokens", json={"name": " ", "expires_in_days": 0}, headers=owner.auth)
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"name", "expires_in_days"}


async def test_each_token_has_its_own_budget(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    """Start allows 60 requests a minute per token."""
    owner = await make_tenant(edition="start")
    second = (await http.post("/api/v1/me/tokens", json={"name": "second"}, headers=owner.auth)).json()["token"]
    statuses = [(await http.get("/api/v1/me", headers=owner.auth)).status_code for _ in range(60)]
    assert statuses.count(200) == 59  # the token creation above used one request
    limited = await http.get("/api/v1/me", headers=owner.auth)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})).status_code == 200


async def test_changing_the_password_signs_other_tokens_out(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    owner, other = await make_tenant(), await make_tenant()
    laptop = (await http.post("/api/v1/me/tokens", json={"name": "old laptop"}, headers=owner.auth)).json()["token"]
    wrong = await http.post(
        "/api/v1/me/password",
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
        headers=owner.auth,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "current_password"
    weak = await http.post(
        "/api/v1/me/password", json={"current_password": owner.password, "new_password": "short"}, headers=owner.auth
    )
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "new_password"

    changed = await http.post(
        "/api/v1/me/password",
        json={"current_password": owner.password, "new_password": "a brand new passphrase"},
        headers=owner.auth,
    )
    assert changed.status_code == 204
    assert (await http.get("/api/v1/me", headers=owner.auth)).status_code == 200  # this session stays
    assert (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {laptop}"})).status_code == 401
    login = {"tenant": owner.slug, "email": owner.email}
    elsewhere = {"X-Forwarded-For": random_ip()}
    old = await http.post("/api/v1/auth/token", json={**login, "password": owner.password}, headers=elsewhere)
    new = await http.post("/api/v1/auth/token", json={**login, "password": "a brand new passphrase"}, headers=elsewhere)
    assert (old.status_code, new.status_code) == (401, 200)
    # The other company's admin still logs in with the (shared test) old password.
    other_login = {"tenant": other.slug, "email": other.email, "password": other.password}
    assert (await http.post("/api/v1/auth/token", json=other_login, headers=elsewhere)).status_code == 200
