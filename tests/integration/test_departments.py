"""Departments: a tree that decides what a `department` scope sees."""

from __future__ import annotations

import httpx

from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.support import random_ip


async def _department(http: httpx.AsyncClient, admin: SignedUpTenant, name: str, parent: int | None = None) -> int:
    response = await http.post("/api/v1/departments", json={"name": name, "parent_id": parent}, headers=admin.auth)
    assert response.status_code == 201, response.text
    department_id: int = response.json()["id"]
    return department_id


async def _emails(http: httpx.AsyncClient, auth: dict[str, str]) -> set[str]:
    return {user["email"] for user in (await http.get("/api/v1/users", headers=auth)).json()["items"]}


async def test_department_scope_follows_the_tree(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    sales = await _department(http, company, "Продажи")
    north = await _department(http, company, "Продажи — Север", sales)
    support = await _department(http, company, "Support")
    head_staff = await add_staff(http, company, "head")
    head_id = head_staff.id
    head = head_staff.auth
    north_staff = await add_staff(http, company, "north")
    north_id = north_staff.id
    north_manager = north_staff.auth
    support_staff = await add_staff(http, company, "support")
    support_id = support_staff.id

    for user_id, department, role in (
        (head_id, sales, "head_of_sales"),
        (north_id, north, "manager"),
        (support_id, support, "operator"),
    ):
        response = await http.patch(
            f"/api/v1/users/{user_id}", json={"department_id": department, "role": role}, headers=company.auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["department_id"] == department and response.json()["role"] == role

    domain = company.slug
    assert await _emails(http, head) == {f"head@{domain}.example", f"north@{domain}.example"}
    assert await _emails(http, north_manager) == {f"north@{domain}.example"}
    assert len(await _emails(http, company.auth)) == 4
    # A manager may not change users; the other company sees none of this.
    forbidden = await http.patch(f"/api/v1/users/{head_id}", json={"role": "admin"}, headers=north_manager)
    assert forbidden.status_code == 403
    assert (await http.get("/api/v1/departments", headers=other.auth)).json()["items"] == []
    # The other company's admin has no user with that id: changing it there changes nothing here.
    cross = await http.patch(f"/api/v1/users/{head_id}", json={"role": "admin"}, headers=other.auth)
    assert cross.status_code == 404
    assert (await http.get(f"/api/v1/users/{head_id}", headers=company.auth)).json()["role"] == "head_of_sales"
    assert await _emails(http, other.auth) == {other.email}

    audit = (await http.get("/api/v1/audit", headers=company.auth, params={"action": "user.updated"})).json()["items"]
    assert {entry["entity_id"] for entry in audit} == {str(head_id), str(north_id), str(support_id)}
    assert {"role": ["operator", "head_of_sales"], "department_id": [None, sales]} in [e["changes"] for e in audit]


async def test_bad_changes_name_the_field(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    someone_staff = await add_staff(http, company, "someone")
    user_id = someone_staff.id
    response = await http.patch(
        f"/api/v1/users/{user_id}", json={"department_id": 999999, "role": "emperor"}, headers=company.auth
    )
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"department_id", "role"}
    bad_parent = await http.post("/api/v1/departments", json={"name": "X", "parent_id": 424242}, headers=company.auth)
    assert bad_parent.status_code == 422 and bad_parent.json()["errors"][0]["field"] == "parent_id"


async def test_deactivation_takes_effect_on_the_next_request(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    leaver_staff = await add_staff(http, company, "leaver")
    user_id = leaver_staff.id
    staff = leaver_staff.auth
    assert (await http.get("/api/v1/me", headers=staff)).status_code == 200

    response = await http.post(f"/api/v1/users/{user_id}/deactivate", headers=company.auth)
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert (await http.get("/api/v1/me", headers=staff)).status_code == 401  # the very next request
    login = await http.post(
        "/api/v1/auth/token",
        json={"tenant": company.slug, "email": f"leaver@{company.slug}.example", "password": "staff password 1"},
        headers={"X-Forwarded-For": random_ip()},
    )
    assert login.status_code == 401
    # Another company's admin cannot reactivate them; the company's own admin can.
    assert (await http.post(f"/api/v1/users/{user_id}/reactivate", headers=other.auth)).status_code == 404
    assert (await http.post(f"/api/v1/users/{user_id}/reactivate", headers=company.auth)).json()["is_active"]
    assert (await http.get("/api/v1/me", headers=staff)).status_code == 200
    own = await http.get("/api/v1/me", headers=company.auth)
    refused = await http.post(f"/api/v1/users/{own.json()['user']['id']}/deactivate", headers=company.auth)
    assert refused.status_code == 422
    actions = [e["action"] for e in (await http.get("/api/v1/audit", headers=company.auth)).json()["items"]]
    assert actions.index("user.reactivated") < actions.index("user.deactivated")  # newest first
