"""Pipelines: each company's own, edited by its admin; stage positions stay dense and a
pipeline always keeps an open, a won and a lost stage."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client
from tests.integration.test_deals import audit, fields, new_deal

NAMES = {"ru": "Опт", "en": "Wholesale"}
WHOLESALE = {
    "key": "wholesale",
    "names": NAMES,
    "stages": [
        {"key": "request", "names": {"ru": "Запрос", "en": "Request"}, "probability": 10},
        {"key": "offer", "names": {"ru": "Предложение", "en": "Offer"}, "probability": 50},
        {"key": "paid", "names": {"ru": "Оплачено", "en": "Paid"}, "probability": 100, "kind": "won"},
        {"key": "refused", "names": {"ru": "Отказ", "en": "Refused"}, "kind": "lost"},
    ],
}


async def pipelines(http: httpx.AsyncClient, company: SignedUpTenant) -> dict[str, dict[str, Any]]:
    response = await http.get("/api/v1/pipelines", headers=company.auth)
    assert response.status_code == 200, response.text
    return {pipeline["key"]: pipeline for pipeline in response.json()["items"]}


def keys(pipeline: dict[str, Any]) -> list[str]:
    assert [stage["position"] for stage in pipeline["stages"]] == list(range(len(pipeline["stages"])))
    return [stage["key"] for stage in pipeline["stages"]]


async def test_each_company_has_its_own_pipelines(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other, start = (
        await make_tenant(edition="business"),
        await make_tenant(edition="business"),
        await make_tenant(edition="start"),
    )
    seeded = await pipelines(http, company)
    assert list(seeded) == ["sales", "repeat_sales"]
    assert keys(seeded["sales"])[0] == "new" and seeded["sales"]["stages"][-1]["kind"] == "lost"
    assert seeded["sales"]["names"] == {"ru": "Продажи", "en": "Sales"}
    # Start has deals too, with its own seeded pipeline.
    assert list(await pipelines(http, start)) == ["sales"]

    created = await http.post("/api/v1/pipelines", json=WHOLESALE, headers=company.auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["key"], body["position"], keys(body)) == ("wholesale", 2, ["request", "offer", "paid", "refused"])
    assert [stage["kind"] for stage in body["stages"]] == ["open", "open", "won", "lost"]
    # The other company does not see it, cannot change it, and may use the same key.
    assert "wholesale" not in await pipelines(http, other)
    assert (
        await http.patch(f"/api/v1/pipelines/{body['id']}", json={"names": NAMES}, headers=other.auth)
    ).status_code == 404
    stage = body["stages"][0]["id"]
    assert (await http.delete(f"/api/v1/pipelines/{body['id']}/stages/{stage}", headers=other.auth)).status_code == 404
    assert (await http.post("/api/v1/pipelines", json=WHOLESALE, headers=other.auth)).status_code == 201
    assert (await http.post("/api/v1/pipelines", json=WHOLESALE, headers=company.auth)).status_code == 409

    # Moving it to the front makes it the default pipeline of new deals.
    front = await http.patch(f"/api/v1/pipelines/{body['id']}", json={"position": 0}, headers=company.auth)
    assert front.status_code == 200 and front.json()["position"] == 0
    assert list(await pipelines(http, company)) == ["wholesale", "sales", "repeat_sales"]
    assert [p["position"] for p in (await pipelines(http, company)).values()] == [0, 1, 2]
    deal = await new_deal(
        http,
        company.auth,
        title="Опт",
        client_id=await seed_client(company, "Оптовик", responsible_id=await my_id(http, company.auth)),
    )
    assert (deal["pipeline_id"], deal["stage_id"]) == (body["id"], body["stages"][0]["id"])
    logged = await audit(http, company, entity="pipeline", entity_id=body["id"])
    assert [entry["action"] for entry in logged] == ["pipeline.updated", "pipeline.created"]
    assert logged[0]["changes"] == {"position": [2, 0]}
    assert len(await audit(http, company, action="stage.created")) == 4
    assert await audit(http, other, action="pipeline.updated") == []


async def test_stage_editing_rules(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    pipeline = (await http.post("/api/v1/pipelines", json=WHOLESALE, headers=company.auth)).json()
    url = f"/api/v1/pipelines/{pipeline['id']}/stages"
    by_key = {stage["key"]: stage["id"] for stage in pipeline["stages"]}

    # An open stage without a position goes before the first closed stage; with one, there.
    added = await http.post(
        url,
        json={"key": "contract", "names": {"ru": "Договор", "en": "Contract"}, "probability": 80},
        headers=company.auth,
    )
    assert added.status_code == 201 and added.json()["position"] == 2
    by_key["contract"] = added.json()["id"]
    first = await http.post(
        url, json={"key": "lead", "names": {"ru": "Лид", "en": "Lead"}, "position": 0}, headers=company.auth
    )
    by_key["lead"] = first.json()["id"]
    current = (await pipelines(http, company))["wholesale"]
    assert keys(current) == ["lead", "request", "offer", "contract", "paid", "refused"]
    taken = await http.post(url, json={"key": "offer", "names": {"ru": "Ещё", "en": "Again"}}, headers=company.auth)
    assert taken.status_code == 409

    # Reordering keeps positions dense, in either direction.
    moved = await http.patch(f"{url}/{by_key['lead']}", json={"position": 3}, headers=company.auth)
    assert keys(moved.json()) == ["request", "offer", "contract", "lead", "paid", "refused"]
    moved = await http.patch(
        f"{url}/{by_key['contract']}", json={"position": 0, "probability": 85}, headers=company.auth
    )
    assert keys(moved.json()) == ["contract", "request", "offer", "lead", "paid", "refused"]
    assert moved.json()["stages"][0]["probability"] == 85

    # A stage with deals in it cannot go, nor change its kind.
    deal = await new_deal(
        http,
        company.auth,
        title="Партия кофе",
        client_id=await seed_client(company, "Кофейня", responsible_id=await my_id(http, company.auth)),
        stage_id=by_key["offer"],
    )
    busy = await http.delete(f"{url}/{by_key['offer']}", headers=company.auth)
    assert busy.status_code == 409 and busy.json()["deals_in_stage"] == 1
    rekind = await http.patch(f"{url}/{by_key['offer']}", json={"kind": "won"}, headers=company.auth)
    assert rekind.status_code == 409
    # The last won or lost stage stays.
    assert (await http.delete(f"{url}/{by_key['paid']}", headers=company.auth)).status_code == 422
    last_lost = await http.patch(f"{url}/{by_key['refused']}", json={"kind": "open"}, headers=company.auth)
    assert last_lost.status_code == 422 and fields(last_lost) == {"kind"}

    # Once the deal has left, the stage goes and the others close the gap.
    await http.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": by_key["request"]}, headers=company.auth)
    assert (await http.delete(f"{url}/{by_key['offer']}", headers=company.auth)).status_code == 204
    assert keys((await pipelines(http, company))["wholesale"]) == ["contract", "request", "lead", "paid", "refused"]
    # Its history keeps the removed stage's id.
    history = (await http.get(f"/api/v1/deals/{deal['id']}/stage-history", headers=company.auth)).json()["items"]
    assert [h["to_stage_id"] for h in history] == [by_key["offer"], by_key["request"]]

    actions = [entry["action"] for entry in await audit(http, company, entity="stage")]
    assert actions.count("stage.created") == 6 and actions.count("stage.updated") == 2
    assert actions[0] == "stage.deleted"
    deleted = (await audit(http, company, action="stage.deleted"))[0]
    assert deleted["entity_id"] == str(by_key["offer"]) and deleted["changes"]["key"] == ["offer", None]


async def test_bad_pipelines_name_every_field(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    response = await http.post(
        "/api/v1/pipelines",
        json={
            "key": "Оптовые продажи",
            "names": {"ru": "Опт", "de": "Großhandel"},
            "stages": [
                {"key": "new", "names": {"ru": "Новая", "en": "New"}, "probability": 150},
                {"key": "new", "names": {"ru": "", "en": "Won"}, "kind": "done"},
            ],
        },
        headers=company.auth,
    )
    assert response.status_code == 422
    assert fields(response) == {
        "key",
        "names.en",
        "names.de",
        "stages.0.probability",
        "stages.1.key",
        "stages.1.names.ru",
        "stages.1.kind",
        "stages",
    }
    pipeline_id = (await pipelines(http, company))["sales"]["id"]
    bad_stage = await http.post(
        f"/api/v1/pipelines/{pipeline_id}/stages",
        json={"key": "9lives", "names": {"ru": "x"}, "probability": -1},
        headers=company.auth,
    )
    assert fields(bad_stage) == {"key", "names.en", "probability"}
    assert (await http.patch("/api/v1/pipelines/999999", json={"position": 0}, headers=company.auth)).status_code == 404


async def test_only_admins_edit_pipelines(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    manager = await add_staff(http, company, "manager", role="manager")
    operator = await add_staff(http, company, "operator", role="operator")
    assert (await http.get("/api/v1/pipelines", headers=manager.auth)).status_code == 200
    denied = await http.post("/api/v1/pipelines", json=WHOLESALE, headers=manager.auth)
    assert denied.status_code == 403 and denied.json()["permission"] == "settings.update"
    sales = (await pipelines(http, company))["sales"]
    stage = sales["stages"][0]["id"]
    assert (
        await http.patch(
            f"/api/v1/pipelines/{sales['id']}/stages/{stage}", json={"probability": 5}, headers=manager.auth
        )
    ).status_code == 403
    # Operators have no deals at all in the business edition.
    assert (await http.get("/api/v1/pipelines", headers=operator.auth)).status_code == 403
