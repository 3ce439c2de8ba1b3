"""Roles: the admin edits what they grant within the edition's rules."""

from __future__ import annotations

import httpx

from crm.platform.auth import load_tenant
from crm.platform.passwords import hash_password
from crm.platform.tenancy import tenant_scope
from crm.tenants.users.tables import User
from tests.conftest import SignedUpTenant, TenantFactory
from tests.support import random_ip


async def _manager(http: httpx.AsyncClient, company: SignedUpTenant) -> dict[str, str]:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        await User.insert(
            User(email="m@example.org", name="M", password_hash=await hash_password("manager password"), role="manager")
        )
    token = await http.post(
        "/api/v1/auth/token",
        json={"tenant": company.slug, "email": "m@example.org", "password": "manager password"},
        headers={"X-Forwarded-For": random_ip()},
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def test_a_role_edit_changes_what_its_users_may_do(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    manager = await _manager(http, company)
    roles = {role["key"]: role for role in (await http.get("/api/v1/roles", headers=company.auth)).json()["items"]}
    assert {"admin", "head_of_sales", "manager", "operator"} <= set(roles)
    assert (await http.get("/api/v1/roles", headers=manager)).status_code == 403
    assert (await http.get("/api/v1/audit", headers=manager)).status_code == 403

    rights = roles["manager"]["rights"] | {"audit": {"read": "all"}}
    updated = await http.patch("/api/v1/roles/manager", json={"rights": rights}, headers=company.auth)
    assert updated.status_code == 200 and updated.json()["rights"]["audit"] == {"read": "all"}
    assert (await http.get("/api/v1/audit", headers=manager)).status_code == 200  # the very next request
    # The other company's manager role is untouched.
    other_roles = {r["key"]: r for r in (await http.get("/api/v1/roles", headers=other.auth)).json()["items"]}
    assert other_roles["manager"]["rights"].get("audit", {}).get("read", "none") == "none"
    audit = (await http.get("/api/v1/audit", headers=company.auth, params={"action": "role.updated"})).json()["items"]
    assert audit[0]["entity_id"] == "manager" and audit[0]["changes"]["rights"][1]["audit"] == {"read": "all"}


async def test_rules_for_rights_and_custom_roles(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    business, enterprise = await make_tenant(edition="business"), await make_tenant(edition="enterprise")
    lockout = await http.patch(
        "/api/v1/roles/admin", json={"rights": {"users": {"read": "all"}}}, headers=business.auth
    )
    assert lockout.status_code == 422 and {e["field"] for e in lockout.json()["errors"]} >= {"rights.users"}
    nonsense = await http.patch(
        "/api/v1/roles/manager",
        json={"rights": {"spaceships": {"read": "all"}, "clients": {"fly": "all", "read": "galaxy"}}},
        headers=business.auth,
    )
    assert {e["field"] for e in nonsense.json()["errors"]} == {
        "rights.spaceships",
        "rights.clients.fly",
        "rights.clients.read",
    }
    assert (await http.patch("/api/v1/roles/ghost", json={"rights": {}}, headers=business.auth)).status_code == 404

    role = {"key": "field_agent", "names": {"ru": "Агент", "en": "Field agent"}, "rights": {"clients": {"read": "own"}}}
    refused = await http.post("/api/v1/roles", json=role, headers=business.auth)
    assert refused.status_code == 402 and refused.json()["module"] == "custom_roles"
    created = await http.post("/api/v1/roles", json=role, headers=enterprise.auth)
    assert created.status_code == 201 and created.json()["is_system"] is False
    assert (await http.post("/api/v1/roles", json=role, headers=enterprise.auth)).status_code == 409
    keys = {r["key"] for r in (await http.get("/api/v1/roles", headers=business.auth)).json()["items"]}
    assert "field_agent" not in keys
