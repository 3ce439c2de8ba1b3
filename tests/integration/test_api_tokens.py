"""API tokens for integrations: named, shown once, stored hashed, revocable, rate-limited."""

from __future__ import annotations

import httpx

from tests.conftest import TenantFactory


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
