"""The client card: one call, everything around the client, each part within the caller's rights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import SignedUpTenant, TenantFactory, add_staff


async def _post(http: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(path, json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


async def _stage(http: httpx.AsyncClient, company: SignedUpTenant, kind: str) -> int:
    pipelines = (await http.get("/api/v1/pipelines", headers=company.auth)).json()["items"]
    stage_id: int = next(stage["id"] for stage in pipelines[0]["stages"] if stage["kind"] == kind)
    return stage_id


async def test_the_card_gathers_the_client_and_its_surroundings(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    admin = company.auth
    client = await _post(
        http, admin, "/api/v1/clients", {"kind": "company", "name": "ООО «Вектор»", "phones": ["8 (495) 123-45-67"]}
    )
    person = await _post(
        http, admin, "/api/v1/clients", {"kind": "person", "name": "Ирина Вектор", "phones": ["+79161234567"]}
    )
    await _post(
        http, admin, f"/api/v1/clients/{person['id']}/companies", {"company_id": client["id"], "position": "CEO"}
    )
    open_deal = await _post(
        http, admin, "/api/v1/deals", {"title": "Поставка", "client_id": client["id"], "amount": "1500.50"}
    )
    won = await _post(http, admin, "/api/v1/deals", {"title": "Пилот", "client_id": client["id"], "amount": "1000"})
    await _post(http, admin, f"/api/v1/deals/{won['id']}/move", {"stage_id": await _stage(http, company, "won")})
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    call = await _post(
        http,
        admin,
        "/api/v1/activities",
        {
            "kind": "call",
            "client_id": client["id"],
            "direction": "out",
            "phone": "+74951234567",
            "outcome": "interested",
            "comment": "Ждут КП",
            "next_step": {"due_at": tomorrow},
        },
    )
    note = await _post(http, admin, "/api/v1/activities", {"kind": "note", "client_id": client["id"], "comment": "VIP"})

    response = await http.get(f"/api/v1/clients/{client['id']}/card", headers=admin)
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["client"]["name"] == "ООО «Вектор»" and card["client"]["phones"] == ["+74951234567"]
    assert card["responsible"]["email"] == company.email
    assert [(c["name"], c["position"], c["phones"]) for c in card["contacts"]] == [
        ("Ирина Вектор", "CEO", ["+79161234567"])
    ]
    assert [deal["id"] for deal in card["deals"]] == [open_deal["id"]]  # open deals only
    assert card["deals"][0]["stage"]["kind"] == "open" and card["deals"][0]["amount"] == "1500.50"
    assert [entry["id"] for entry in card["timeline"]] == [note["id"], call["id"]]  # newest first
    assert card["timeline"][1]["author"]["email"] == company.email
    assert [task["id"] for task in card["tasks"]] == [call["next_task_id"]]
    figures = card["figures"]
    assert figures["revenue_won"] == [{"currency": "RUB", "amount": "1000.00"}]
    assert (figures["deals_open"], figures["deals_won"], figures["deals_lost"]) == (1, 1, 0)
    assert figures["days_since_last_contact"] == 0 and figures["last_contact_at"] is not None

    # The person's card lists the company they are at.
    person_card = (await http.get(f"/api/v1/clients/{person['id']}/card", headers=admin)).json()
    assert [c["name"] for c in person_card["contacts"]] == ["ООО «Вектор»"]
    # Another company's admin: no such client there.
    assert (await http.get(f"/api/v1/clients/{client['id']}/card", headers=other.auth)).status_code == 404


async def test_a_manager_sees_only_what_their_role_allows(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    admin = company.auth
    manager = await add_staff(http, company, "manager", role="manager")
    colleague = await add_staff(http, company, "colleague", role="manager")
    theirs = await _post(
        http, colleague.auth, "/api/v1/clients", {"kind": "person", "name": "Чужой клиент", "phones": [], "emails": []}
    )
    mine = await _post(
        http, manager.auth, "/api/v1/clients", {"kind": "person", "name": "Мой клиент", "phones": [], "emails": []}
    )
    # The admin adds a deal and a task of their own on the manager's client.
    await _post(http, admin, "/api/v1/deals", {"title": "Сделка админа", "client_id": mine["id"]})
    await _post(
        http,
        admin,
        "/api/v1/tasks",
        {"title": "Задача админа", "due_at": datetime.now(UTC).isoformat(), "client_id": mine["id"]},
    )
    await _post(
        http,
        manager.auth,
        "/api/v1/tasks",
        {"title": "Моя задача", "due_at": datetime.now(UTC).isoformat(), "client_id": mine["id"]},
    )

    assert (await http.get(f"/api/v1/clients/{theirs['id']}/card", headers=manager.auth)).status_code == 404
    card = (await http.get(f"/api/v1/clients/{mine['id']}/card", headers=manager.auth)).json()
    # `own` on deals and tasks: the admin's deal and task on this client stay out of the manager's card.
    assert card["deals"] == [] and card["figures"]["deals_open"] == 0
    assert [task["title"] for task in card["tasks"]] == ["Моя задача"]
    admin_card = (await http.get(f"/api/v1/clients/{mine['id']}/card", headers=admin)).json()
    assert len(admin_card["deals"]) == 1 and len(admin_card["tasks"]) == 2
