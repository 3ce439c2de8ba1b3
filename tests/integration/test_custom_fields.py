"""The admin edits custom fields; clients then take, validate and filter by them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantFactory, add_staff

BUDGET = {"entity": "client", "key": "budget", "names": {"ru": "Бюджет", "en": "Budget"}, "type": "number"}
SEGMENT = {
    "entity": "client",
    "key": "segment",
    "names": {"ru": "Сегмент", "en": "Segment"},
    "type": "choice",
    "required": True,
    "choices": [
        {"key": "smb", "names": {"ru": "Малый бизнес", "en": "Small business"}},
        {"key": "corp", "names": {"ru": "Корпорации", "en": "Enterprise"}},
    ],
}


async def _replace(http: httpx.AsyncClient, auth: dict[str, str], fields: list[dict[str, Any]]) -> httpx.Response:
    return await http.put("/api/v1/settings/custom-fields", json=fields, headers=auth)


async def test_admin_defines_fields_that_clients_then_obey(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    seeded = (await http.get("/api/v1/settings/custom-fields", headers=company.auth)).json()
    assert {field["key"] for field in seeded} >= {"industry"}  # from the edition

    replaced = await _replace(http, company.auth, [BUDGET, SEGMENT])
    assert replaced.status_code == 200, replaced.text
    assert [field["key"] for field in replaced.json()] == ["budget", "segment"]

    # A required choice is now required, and values must fit their types.
    missing = await http.post("/api/v1/clients", json={"kind": "company", "name": "Альфа"}, headers=company.auth)
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["custom.segment"]
    wrong = await http.post(
        "/api/v1/clients",
        json={"kind": "company", "name": "Альфа", "custom": {"segment": "huge", "budget": "много"}},
        headers=company.auth,
    )
    assert sorted(e["field"] for e in wrong.json()["errors"]) == ["custom.budget", "custom.segment"]
    created = await http.post(
        "/api/v1/clients",
        json={"kind": "company", "name": "Альфа", "custom": {"segment": "corp", "budget": 1500000}},
        headers=company.auth,
    )
    assert created.status_code == 201, created.text
    listed = await http.get("/api/v1/clients", params={"custom.segment": "corp"}, headers=company.auth)
    assert [client["name"] for client in listed.json()["items"]] == ["Альфа"]

    # A field holding values keeps its type; the other company's fields are its own.
    retyped = await _replace(http, company.auth, [{**BUDGET, "type": "text"}, SEGMENT])
    assert retyped.status_code == 409
    assert [
        field["key"] for field in (await http.get("/api/v1/settings/custom-fields", headers=other.auth)).json()
    ] != [
        "budget",
        "segment",
    ]
    assert (
        await http.post("/api/v1/clients", json={"kind": "company", "name": "Бета"}, headers=other.auth)
    ).status_code == 201

    log = (
        await http.get("/api/v1/audit", params={"action": "settings.custom_fields_updated"}, headers=company.auth)
    ).json()
    assert len(log["items"]) == 1


async def test_bad_definitions_rights_and_edition(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, start = await make_tenant(), await make_tenant(edition="start")
    bad = await _replace(
        http,
        company.auth,
        [
            {**BUDGET, "key": "Budget!"},
            {**SEGMENT, "choices": []},
            {**BUDGET, "entity": "invoice", "type": "money", "names": {"ru": "", "en": "x"}},
            {**BUDGET, "choices": SEGMENT["choices"]},
        ],
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {
        "0.key",
        "1.choices",
        "2.entity",
        "2.type",
        "2.names.ru",
        "3.choices",
    }
    manager = await add_staff(http, company, "manager", role="manager")
    assert (await _replace(http, manager.auth, [BUDGET])).status_code == 403
    assert (await http.get("/api/v1/settings/custom-fields", headers=start.auth)).status_code == 402
