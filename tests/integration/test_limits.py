"""The edition's quotas: users and clients cannot be added past them (402), in any way."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import SignedUpTenant, TenantFactory


async def _invite(http: httpx.AsyncClient, company: SignedUpTenant, name: str) -> httpx.Response:
    body = {"email": f"{name}@{company.slug}.example", "name": name, "role": "manager", "locale": "en"}
    return await http.post("/api/v1/users/invitations", json=body, headers=company.auth)


async def _fill_clients(company: SignedUpTenant, count: int) -> None:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        await scope_connection().execute(
            "INSERT INTO clients (kind, name) SELECT 'person', 'Client ' || n FROM generate_series(1, $1) AS n", count
        )


async def test_the_start_edition_stops_at_its_limits(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    start, business = await make_tenant(edition="start"), await make_tenant(edition="business")
    # Start: 3 users. The admin is one; two invitations fill it; the third is refused.
    assert (await _invite(http, start, "second")).status_code == 201
    assert (await _invite(http, start, "third")).status_code == 201
    refused = await _invite(http, start, "fourth")
    assert refused.status_code == 402
    assert (refused.json()["quota"], refused.json()["limit"]) == ("users", 3)
    assert (await _invite(http, business, "fourth")).status_code == 201  # the other company has room

    # Start: 1,000 clients. At 999 one more fits, then nothing: not by the API, not by an import.
    await _fill_clients(start, 999)
    body: dict[str, Any] = {"kind": "person", "name": "Последний", "phones": [], "emails": []}
    assert (await http.post("/api/v1/clients", json=body, headers=start.auth)).status_code == 201
    over = await http.post("/api/v1/clients", json={**body, "name": "Лишний"}, headers=start.auth)
    assert over.status_code == 402 and over.json()["quota"] == "clients"
    assert (
        await http.post("/api/v1/clients", json={**body, "name": "Лишний"}, headers=business.auth)
    ).status_code == 201


async def test_an_import_stops_at_the_limit_row_by_row(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    business, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    await _fill_clients(business, 50_000 - 2)
    upload = await http.post(
        "/api/v1/imports",
        headers=business.auth,
        files={"file": ("c.csv", "name\nПервый\nВторой\nТретий\n".encode(), "text/csv")},
    )
    assert upload.status_code == 202, upload.text
    for _ in range(200):
        job = (await http.get(f"/api/v1/imports/{upload.json()['id']}", headers=business.auth)).json()
        if job["status"] == "done":
            break
        await asyncio.sleep(0.05)
    assert (job["created_rows"], job["error_rows"]) == (2, 1)
    assert job["errors"] == [{"row": 4, "field": "name", "detail": "the edition's client limit is reached"}]
    assert (await http.get("/api/v1/clients", headers=other.auth)).json()["items"] == []
