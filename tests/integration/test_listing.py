"""The list conventions every endpoint shares: sort, cursor, limit, filters by field name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import tenant_scope
from crm.tenants.users.tables import User
from tests.conftest import SignedUpTenant, TenantFactory

NAMES = ["Борис", "anna", "Carl", "dora", "Ёжик", "bea", "Anna"]


async def _staff(company: SignedUpTenant) -> None:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        for index, name in enumerate(NAMES):
            await User.insert(
                User(email=f"s{index}@{company.slug}.example", name=name, role="manager", is_active=index % 2 == 0)
            )


async def _walk(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of /api/v1/users, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = await http.get(
            "/api/v1/users", headers=auth, params={**params, "cursor": cursor} if cursor else params
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= params.get("limit", 50)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_sorted_pages_cover_every_row_once(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    await _staff(company)
    await _staff(other)

    for field in ("name", "email", "created_at", "id"):
        ascending = await _walk(http, company.auth, sort=field, limit=2)
        # Pages of two, joined, are the one big page: nothing skipped or repeated at a boundary.
        assert ascending == await _walk(http, company.auth, sort=field, limit=200), field
        assert len({user["id"] for user in ascending}) == len(NAMES) + 1, field
        # Descending is the exact reverse: ties (same name, same creation time) break by id.
        assert await _walk(http, company.auth, sort=f"-{field}", limit=3) == ascending[::-1], field
        # Only this company's users; the other company's staff never appear.
        assert all(user["email"].endswith(f"@{company.slug}.example") for user in ascending), field
    by_id = [user["id"] for user in await _walk(http, company.auth, sort="id", limit=2)]
    assert by_id == sorted(by_id)
    # The database's collation decides the order of names; spot-check that it is one.
    names = [user["name"] for user in await _walk(http, company.auth, sort="name", limit=2)]
    assert names.index("Carl") < names.index("dora") and names.index("bea") < names.index("dora")


async def test_filters_are_named_after_fields(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    await _staff(company)
    await _staff(other)

    inactive = await _walk(http, company.auth, is_active="false")
    assert sorted(user["name"] for user in inactive) == sorted(NAMES[1::2])
    managers = await _walk(http, company.auth, role="manager", is_active="true")
    assert sorted(user["name"] for user in managers) == sorted(NAMES[0::2])
    # q matches name or e-mail, case-insensitively, Cyrillic too; LIKE wildcards are literal.
    assert {user["name"] for user in await _walk(http, company.auth, q="ANNA")} == {"anna", "Anna"}
    assert {user["name"] for user in await _walk(http, company.auth, q="ёж")} == {"Ёжик"}
    assert await _walk(http, company.auth, q="%") == []
    assert [user["email"] for user in await _walk(http, other.auth, q=company.slug)] == []


async def test_bad_sort_and_cursor_name_the_parameter(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    await _staff(company)

    bad_sort = await http.get("/api/v1/users", headers=company.auth, params={"sort": "password_hash"})
    assert bad_sort.status_code == 422
    assert bad_sort.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in bad_sort.json()["errors"]] == ["sort"]

    first = (await http.get("/api/v1/users", headers=company.auth, params={"sort": "name", "limit": 2})).json()
    assert first["next_cursor"]
    # A cursor belongs to its sort order; reusing it with another one is refused, not misread.
    mixed = await http.get(
        "/api/v1/users", headers=company.auth, params={"sort": "email", "cursor": first["next_cursor"]}
    )
    assert mixed.status_code == 422
    assert [error["field"] for error in mixed.json()["errors"]] == ["cursor"]
    garbage = await http.get("/api/v1/users", headers=company.auth, params={"cursor": "not-a-cursor"})
    assert garbage.status_code == 422
    too_many = await http.get("/api/v1/users", headers=company.auth, params={"limit": 1000})
    assert too_many.status_code == 422


async def test_audit_time_range_and_order(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    newest_first = (await http.get("/api/v1/audit", headers=company.auth)).json()["items"]
    assert [entry["id"] for entry in newest_first] == sorted((entry["id"] for entry in newest_first), reverse=True)
    oldest_first = (await http.get("/api/v1/audit", headers=company.auth, params={"sort": "id"})).json()["items"]
    assert oldest_first == newest_first[::-1]

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await http.get("/api/v1/audit", headers=company.auth, params={"occurred_at_from": future})).json()[
        "items"
    ] == []
    until_future = await http.get("/api/v1/audit", headers=company.auth, params={"occurred_at_to": future})
    assert until_future.json()["items"] == newest_first
    # The other company's log holds its own signup only.
    theirs = (await http.get("/api/v1/audit", headers=other.auth)).json()["items"]
    assert theirs and all(company.email not in str(entry) and company.slug not in str(entry) for entry in theirs)
