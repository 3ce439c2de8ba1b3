"""Deals: created in the default pipeline, moved through stages with every change recorded
with its time, seen and changed only within the caller's rights, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client


async def stages(http: httpx.AsyncClient, company: SignedUpTenant, pipeline: str = "sales") -> dict[str, Any]:
    """The pipeline ``pipeline`` with its stages by key."""
    pipelines = (await http.get("/api/v1/pipelines", headers=company.auth)).json()["items"]
    found = next(p for p in pipelines if p["key"] == pipeline)
    return {"id": found["id"], **{stage["key"]: stage for stage in found["stages"]}}


async def new_deal(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/deals", json=body, headers=auth)
    assert response.status_code == 201, response.text
    deal: dict[str, Any] = response.json()
    return deal


async def audit(http: httpx.AsyncClient, company: SignedUpTenant, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await http.get("/api/v1/audit", headers=company.auth, params=params)).json()["items"]
    return items


def fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


async def test_a_deal_starts_in_the_first_open_stage_of_the_first_pipeline(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    client = await seed_client(company, "ООО «Ромашка»", responsible_id=admin_id)
    sales = await stages(http, company)

    deal = await new_deal(
        http,
        company.auth,
        title="Поставка кофемашин",
        client_id=client,
        amount="125000.5",
        expected_close_on="2031-03-01",
    )
    assert deal["pipeline_id"] == sales["id"] and deal["stage_id"] == sales["new"]["id"]
    assert deal["probability"] == sales["new"]["probability"] == 10
    assert (deal["status"], deal["currency"], deal["amount"]) == ("open", "RUB", "125000.50")
    assert deal["responsible_id"] == deal["author_id"] == admin_id and deal["closed_at"] is None
    assert deal["expected_close_on"] == "2031-03-01"
    # A number works as well as a string, and money stays exact.
    exact = await new_deal(http, company.auth, title="Exact", client_id=client, amount=9999999999.99, currency="usd")
    assert (exact["amount"], exact["currency"]) == ("9999999999.99", "USD")

    history = (await http.get(f"/api/v1/deals/{deal['id']}/stage-history", headers=company.auth)).json()["items"]
    assert [(h["from_stage_id"], h["to_stage_id"], h["actor_id"]) for h in history] == [
        (None, sales["new"]["id"], admin_id)
    ]
    assert history[0]["changed_at"] == deal["stage_changed_at"]
    created = await audit(http, company, action="deal.created", entity_id=deal["id"])
    assert created[0]["changes"]["amount"] == [None, "125000.50"]
    assert created[0]["changes"]["stage_id"] == [None, sales["new"]["id"]]

    # The other company sees none of it, and cannot use this company's client or stages.
    assert (await http.get("/api/v1/deals", headers=other.auth)).json()["items"] == []
    assert (await http.get(f"/api/v1/deals/{deal['id']}", headers=other.auth)).status_code == 404
    assert (await http.get(f"/api/v1/deals/{deal['id']}/stage-history", headers=other.auth)).status_code == 404
    foreign = await http.post(
        "/api/v1/deals",
        json={"title": "Чужая", "client_id": client, "stage_id": sales["proposal"]["id"]},
        headers=other.auth,
    )
    assert foreign.status_code == 422 and "client_id" in fields(foreign)


async def test_every_move_is_recorded_with_its_time(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    sales = await stages(http, company)
    deal = await new_deal(
        http, company.auth, title="Лицензии 1С", client_id=await seed_client(company, "ИП Сидоров"), amount=48000
    )
    url = f"/api/v1/deals/{deal['id']}"

    proposal = (await http.post(f"{url}/move", json={"stage_id": sales["proposal"]["id"]}, headers=company.auth)).json()
    assert (proposal["stage_id"], proposal["probability"], proposal["status"]) == (sales["proposal"]["id"], 50, "open")
    won = (await http.post(f"{url}/move", json={"stage_id": sales["won"]["id"]}, headers=company.auth)).json()
    assert won["status"] == "won" and won["closed_at"] is not None and won["probability"] == 100

    no_reason = await http.post(f"{url}/move", json={"stage_id": sales["lost"]["id"]}, headers=company.auth)
    assert no_reason.status_code == 422 and fields(no_reason) == {"lost_reason"}
    lost = await http.post(
        f"{url}/move", json={"stage_id": sales["lost"]["id"], "lost_reason": "Выбрали конкурента"}, headers=company.auth
    )
    assert lost.status_code == 200, lost.text
    assert (lost.json()["status"], lost.json()["lost_reason"], lost.json()["probability"]) == (
        "lost",
        "Выбрали конкурента",
        0,
    )
    # Back to an open stage: reopened, with the probability given in the same call.
    reopened = await http.post(
        f"{url}/move", json={"stage_id": sales["negotiation"]["id"], "probability": 40}, headers=company.auth
    )
    body = reopened.json()
    assert (body["status"], body["closed_at"], body["lost_reason"], body["probability"]) == ("open", None, None, 40)
    # The same stage again changes nothing and records nothing.
    again = await http.post(f"{url}/move", json={"stage_id": sales["negotiation"]["id"]}, headers=company.auth)
    assert again.json() == body

    history = (await http.get(f"{url}/stage-history", headers=company.auth)).json()["items"]
    path = [sales[key]["id"] for key in ("new", "proposal", "won", "lost", "negotiation")]
    assert [h["to_stage_id"] for h in history] == path
    assert [h["from_stage_id"] for h in history] == [None, *path[:-1]]
    times = [datetime.fromisoformat(h["changed_at"]) for h in history]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(h["actor_id"] == admin_id for h in history)
    assert datetime.fromisoformat(body["stage_changed_at"]) == times[-1]
    newest_first = (await http.get(f"{url}/stage-history", headers=company.auth, params={"sort": "-changed_at"})).json()
    assert [h["id"] for h in newest_first["items"]] == [h["id"] for h in reversed(history)]

    moves = await audit(http, company, action="deal.moved", entity_id=deal["id"])
    assert len(moves) == 4
    assert moves[0]["changes"]["status"] == ["lost", "open"] and moves[0]["changes"]["closed_at"][1] is None
    assert moves[1]["changes"]["lost_reason"] == [None, "Выбрали конкурента"]
    # A stage of another company is no stage here.
    theirs = await stages(http, other)
    foreign = await http.post(f"{url}/move", json={"stage_id": theirs["won"]["id"] + 10_000}, headers=company.auth)
    assert foreign.status_code == 422 and fields(foreign) == {"stage_id"}
    assert (
        await http.post(f"{url}/move", json={"stage_id": theirs["won"]["id"]}, headers=other.auth)
    ).status_code == 404


async def test_bad_input_names_every_field(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, start = await make_tenant(edition="business"), await make_tenant(edition="start")
    client = await seed_client(company, "Acme Ltd", responsible_id=await my_id(http, company.auth))
    sales, repeat = await stages(http, company), await stages(http, company, "repeat_sales")
    response = await http.post(
        "/api/v1/deals",
        json={
            "title": " ",
            "client_id": 424242,
            "pipeline_id": sales["id"],
            "stage_id": repeat["offer"]["id"],
            "amount": "12.345",
            "currency": "rubles",
            "probability": 101,
            "custom": {"payment_due": "tomorrow", "colour": "red"},
        },
        headers=company.auth,
    )
    assert response.status_code == 422
    assert fields(response) == {
        "title",
        "client_id",
        "stage_id",
        "amount",
        "currency",
        "probability",
        "custom.payment_due",
        "custom.colour",
    }
    negative = await http.post(
        "/api/v1/deals", json={"title": "X", "client_id": client, "amount": -1}, headers=company.auth
    )
    assert fields(negative) == {"amount"}
    # A stage alone chooses its pipeline; custom fields are kept in canonical form.
    deal = await new_deal(
        http,
        company.auth,
        title="Повторная продажа",
        client_id=client,
        stage_id=repeat["offer"]["id"],
        custom={"payment_due": "2031-01-15", "contract_number": "Д-17/2031"},
    )
    assert deal["pipeline_id"] == repeat["id"] and deal["custom"]["payment_due"] == "2031-01-15"
    unknown = await http.post(
        "/api/v1/deals", json={"title": "X", "client_id": client, "budget": 1}, headers=company.auth
    )
    assert unknown.status_code in (400, 422)
    # The Start edition has deals but not custom fields.
    start_client = await seed_client(start, "Start client", responsible_id=await my_id(http, start.auth))
    plain = await new_deal(http, start.auth, title="Старт", client_id=start_client)
    assert plain["status"] == "open"
    gated = await http.post(
        "/api/v1/deals", json={"title": "X", "client_id": start_client, "custom": {"a": 1}}, headers=start.auth
    )
    assert gated.status_code == 402 and gated.json()["module"] == "custom_fields"


async def test_a_manager_works_only_with_own_deals(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    sales = await stages(http, company)
    annas_client = await seed_client(company, "Клиент Анны", responsible_id=anna.id)
    deal = await new_deal(http, anna.auth, title="Сделка Анны", client_id=annas_client, amount="1000")
    assert deal["responsible_id"] == deal["author_id"] == anna.id
    url = f"/api/v1/deals/{deal['id']}"

    # Boris sees nothing of it and can change nothing: 404, as if it did not exist.
    assert (await http.get("/api/v1/deals", headers=boris.auth)).json()["items"] == []
    assert (await http.get(url, headers=boris.auth)).status_code == 404
    assert (
        await http.post(f"{url}/move", json={"stage_id": sales["won"]["id"]}, headers=boris.auth)
    ).status_code == 404
    assert (await http.patch(url, json={"amount": 1}, headers=boris.auth)).status_code == 404
    assert (await http.get(f"{url}/stage-history", headers=boris.auth)).status_code == 404
    # Nor may he open a deal on Anna's client, or (a manager) make Anna responsible for his.
    on_hers = await http.post("/api/v1/deals", json={"title": "X", "client_id": annas_client}, headers=boris.auth)
    assert on_hers.status_code == 422 and fields(on_hers) == {"client_id"}
    boris_client = await seed_client(company, "Клиент Бориса", responsible_id=boris.id)
    assign = await http.post(
        "/api/v1/deals", json={"title": "X", "client_id": boris_client, "responsible_id": anna.id}, headers=boris.auth
    )
    assert assign.status_code == 403 and assign.json()["permission"] == "deals.assign"
    # A manager may not delete deals at all.
    assert (await http.delete(url, headers=anna.auth)).status_code == 403

    # Anna moves her deal; the admin sees it and may hand it to Boris, who then sees it.
    moved = await http.post(f"{url}/move", json={"stage_id": sales["proposal"]["id"]}, headers=anna.auth)
    assert moved.status_code == 200
    assert [d["id"] for d in (await http.get("/api/v1/deals", headers=company.auth)).json()["items"]] == [deal["id"]]
    handed = await http.patch(url, json={"responsible_id": boris.id}, headers=company.auth)
    assert handed.status_code == 200 and handed.json()["responsible_id"] == boris.id
    assert (await http.get(url, headers=boris.auth)).status_code == 200
    # Anna still authored it, so she still sees it.
    assert (await http.get(url, headers=anna.auth)).status_code == 200
    # The admin of another company cannot reach it.
    assert (await http.patch(url, json={"title": "hijack"}, headers=other.auth)).status_code == 404
    assert (await http.delete(url, headers=other.auth)).status_code == 404


async def test_lists_filter_and_sort(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    client, second = (
        await seed_client(company, "Альфа", responsible_id=admin_id),
        await seed_client(company, "Бета", responsible_id=admin_id),
    )
    sales = await stages(http, company)
    amounts = ["500.00", "1500.00", "1500.00", "25000.00", "0.00"]
    deals = [
        await new_deal(
            http,
            company.auth,
            title=f"Заказ {index}",
            client_id=client if index % 2 else second,
            amount=amount,
            expected_close_on=f"2031-0{index + 1}-10",
        )
        for index, amount in enumerate(amounts)
    ]
    await http.post(f"/api/v1/deals/{deals[3]['id']}/move", json={"stage_id": sales["won"]["id"]}, headers=company.auth)
    await new_deal(http, other.auth, title="Заказ чужой", client_id=await seed_client(other, "X"))

    async def ids(**params: Any) -> list[int]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await http.get(
                "/api/v1/deals", headers=company.auth, params={**params, **({"cursor": cursor} if cursor else {})}
            )
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return [item["id"] for item in items]

    every = [deal["id"] for deal in deals]
    assert await ids() == every
    assert await ids(sort="-amount", limit=2) == [every[i] for i in (3, 2, 1, 0, 4)]
    assert await ids(sort="amount", limit=1) == [every[i] for i in (4, 0, 1, 2, 3)]
    assert await ids(status="won") == [every[3]]
    assert await ids(status="open", client_id=client) == [every[1]]
    assert await ids(amount_from="1000", amount_to="25000") == [every[1], every[2]]
    assert await ids(expected_close_on_from="2031-02-01", expected_close_on_to="2031-04-01") == every[1:3]
    assert await ids(q="заказ 4") == [every[4]]
    assert await ids(stage_id=sales["won"]["id"]) == [every[3]]
    assert (await ids(sort="-stage_changed_at"))[0] == every[3]
    bad = await http.get("/api/v1/deals", headers=company.auth, params={"status": "maybe", "sort": "colour"})
    assert bad.status_code == 422 and fields(bad) == {"sort"}
    bad_status = await http.get("/api/v1/deals", headers=company.auth, params={"status": "maybe"})
    assert bad_status.status_code == 422 and fields(bad_status) == {"status"}


async def test_changes_and_deletion_are_audited(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    deal = await new_deal(
        http,
        company.auth,
        title="Сервисный контракт",
        client_id=await seed_client(company, "Гамма", responsible_id=admin_id),
    )
    url = f"/api/v1/deals/{deal['id']}"
    changed = await http.patch(
        url,
        json={"title": "Сервисный контракт на 2031", "amount": "75000", "expected_close_on": None},
        headers=company.auth,
    )
    assert changed.status_code == 200 and changed.json()["amount"] == "75000.00"
    updated = await audit(http, company, action="deal.updated", entity_id=deal["id"])
    assert updated[0]["changes"] == {
        "title": ["Сервисный контракт", "Сервисный контракт на 2031"],
        "amount": ["0.00", "75000.00"],
    }
    bad = await http.patch(url, json={"amount": "1e20", "currency": "12"}, headers=company.auth)
    assert bad.status_code == 422 and fields(bad) == {"amount", "currency"}
    # A stage of another pipeline moves the deal into that pipeline.
    repeat = await stages(http, company, "repeat_sales")
    moved = await http.post(f"{url}/move", json={"stage_id": repeat["offer"]["id"]}, headers=company.auth)
    assert (moved.json()["pipeline_id"], moved.json()["probability"]) == (repeat["id"], 60)
    move_log = await audit(http, company, action="deal.moved", entity_id=deal["id"])
    assert move_log[0]["changes"]["pipeline_id"] == [deal["pipeline_id"], repeat["id"]]

    assert (await http.delete(url, headers=other.auth)).status_code == 404
    assert (await http.delete(url, headers=company.auth)).status_code == 204
    assert (await http.get(url, headers=company.auth)).status_code == 404
    deleted = await audit(http, company, action="deal.deleted", entity_id=deal["id"])
    assert deleted[0]["changes"]["title"] == ["Сервисный контракт на 2031", None]
    assert await audit(http, other, entity="deal") == []
