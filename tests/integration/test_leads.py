"""Leads: created with clean phones and e-mails, qualified or disqualified, and converted in
one step into a client (and a deal) — all or nothing, once, audited, within the rights."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration.helpers import my_id, seed_client
from tests.integration.test_deals import audit, fields, stages

IVAN = {
    "name": "Иван  Петров",
    "company_name": "ООО «Вектор»",
    "phones": ["8 (912) 345-67-89"],
    "emails": [" Ivan@Vector.example "],
    "source": "web_form",
    "note": "Просит счёт на 10 ноутбуков",
}


async def new_lead(http: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/leads", json=body, headers=auth)
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


async def lead_ids(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[int]:
    response = await http.get("/api/v1/leads", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return [lead["id"] for lead in response.json()["items"]]


async def client_count(http: httpx.AsyncClient, company: SignedUpTenant) -> int:
    response = await http.get("/api/v1/clients", headers=company.auth, params={"limit": 200})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def test_leads_are_cleaned_listed_and_kept_apart(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    lead = await new_lead(http, company.auth, **IVAN, custom={"utm_campaign": "autumn-sale"})
    assert (lead["name"], lead["phones"], lead["emails"]) == ("Иван Петров", ["+79123456789"], ["ivan@vector.example"])
    assert (lead["status"], lead["source"], lead["responsible_id"], lead["author_id"]) == (
        "new",
        "web_form",
        admin_id,
        admin_id,
    )
    assert lead["custom"] == {"utm_campaign": "autumn-sale"}
    plain = await new_lead(http, company.auth, name="Anna Smith")
    assert (plain["source"], plain["company_name"], plain["phones"]) == ("manual", "", [])

    bad = await http.post(
        "/api/v1/leads",
        json={
            "name": " ",
            "phones": ["+7 912 345 67 89", "call me"],
            "emails": ["not-an-address"],
            "source": "fax",
            "responsible_id": 999999,
            "custom": {"utm_campaign": 7},
        },
        headers=company.auth,
    )
    assert bad.status_code == 422
    assert fields(bad) == {"name", "phones.1", "emails.0", "source", "responsible_id", "custom.utm_campaign"}

    # q finds by name, company, phone as people type it, or e-mail.
    assert await lead_ids(http, company.auth, q="вектор") == [lead["id"]]
    assert await lead_ids(http, company.auth, q="+7 912 345-67-89") == [lead["id"]]
    assert await lead_ids(http, company.auth, q="IVAN@vector.example") == [lead["id"]]
    assert await lead_ids(http, company.auth, source="manual") == [plain["id"]]
    assert await lead_ids(http, company.auth, sort="-name") == [lead["id"], plain["id"]]
    assert (await http.get("/api/v1/leads", headers=company.auth, params={"status": "hot"})).status_code == 422

    # The other company sees none of it.
    assert await lead_ids(http, other.auth) == []
    assert await lead_ids(http, other.auth, q="+79123456789") == []
    assert (await http.get(f"/api/v1/leads/{lead['id']}", headers=other.auth)).status_code == 404
    assert (await http.patch(f"/api/v1/leads/{lead['id']}", json={"note": "x"}, headers=other.auth)).status_code == 404
    created = await audit(http, company, action="lead.created", entity_id=lead["id"])
    assert created[0]["changes"]["phones"] == [None, ["+79123456789"]]
    assert await audit(http, other, entity="lead") == []


async def test_qualifying_and_disqualifying(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    lead = await new_lead(http, company.auth, name="Мария Соколова", phones=["+7 (495) 123-45-67"])
    url = f"/api/v1/leads/{lead['id']}"
    working = await http.patch(
        url, json={"status": "in_progress", "note": "Перезвонить в пятницу"}, headers=company.auth
    )
    assert working.status_code == 200 and working.json()["status"] == "in_progress"
    assert (await http.patch(url, json={"status": "converted"}, headers=company.auth)).status_code == 422

    no_reason = await http.post(f"{url}/disqualify", json={"reason": "  "}, headers=company.auth)
    assert no_reason.status_code == 422 and fields(no_reason) == {"reason"}
    out = await http.post(f"{url}/disqualify", json={"reason": "Нет бюджета"}, headers=company.auth)
    assert (out.json()["status"], out.json()["disqualified_reason"]) == ("disqualified", "Нет бюджета")
    back = await http.post(f"{url}/qualify", headers=company.auth)
    assert (back.json()["status"], back.json()["disqualified_reason"]) == ("qualified", None)
    assert await lead_ids(http, company.auth, status="qualified") == [lead["id"]]

    actions = [entry["action"] for entry in await audit(http, company, entity="lead", entity_id=lead["id"])]
    assert actions == ["lead.qualified", "lead.disqualified", "lead.updated", "lead.created"]
    assert (await http.delete(url, headers=company.auth)).status_code == 204
    assert (await http.get(url, headers=company.auth)).status_code == 404
    assert (await audit(http, company, action="lead.deleted"))[0]["changes"]["name"] == ["Мария Соколова", None]


async def test_a_manager_works_only_with_own_leads(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    lead = await new_lead(http, anna.auth, name="Клиент Анны", phones=["+79001112233"])
    url = f"/api/v1/leads/{lead['id']}"

    assert await lead_ids(http, boris.auth) == []
    assert (await http.get(url, headers=boris.auth)).status_code == 404
    assert (await http.post(f"{url}/qualify", headers=boris.auth)).status_code == 404
    assert (await http.post(f"{url}/convert", json={}, headers=boris.auth)).status_code == 404
    handed = await http.post("/api/v1/leads", json={"name": "X", "responsible_id": anna.id}, headers=boris.auth)
    assert handed.status_code == 403 and handed.json()["permission"] == "leads.assign"
    assert (await http.delete(url, headers=anna.auth)).status_code == 403  # managers do not delete leads
    assert await lead_ids(http, company.auth) == [lead["id"]]
    # The admin hands it over; now Boris works with it.
    assert (await http.patch(url, json={"responsible_id": boris.id}, headers=company.auth)).status_code == 200
    assert (await http.post(f"{url}/qualify", headers=boris.auth)).json()["status"] == "qualified"


async def test_conversion_creates_client_and_deal_once(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    lead = await new_lead(http, anna.auth, **IVAN)
    url = f"/api/v1/leads/{lead['id']}"
    assert (await http.post(f"{url}/convert", json={"deal": {}}, headers=other.auth)).status_code == 404

    converted = await http.post(
        f"{url}/convert", json={"deal": {"amount": "250000", "title": "10 ноутбуков"}}, headers=anna.auth
    )
    assert converted.status_code == 200, converted.text
    result = converted.json()
    client_id, person_id, deal_id = result["client_id"], result["person_id"], result["deal_id"]
    assert result["lead"]["status"] == "converted" and result["lead"]["converted_at"] is not None
    assert (result["lead"]["client_id"], result["lead"]["deal_id"]) == (client_id, deal_id)

    # The company is the client, the person is linked to it; both belong to the lead's owner.
    company_card = (await http.get(f"/api/v1/clients/{client_id}", headers=anna.auth)).json()
    assert (company_card["kind"], company_card["name"], company_card["responsible_id"]) == (
        "company",
        "ООО «Вектор»",
        anna.id,
    )
    assert [person["id"] for person in company_card["people"]] == [person_id]
    person = (await http.get(f"/api/v1/clients/{person_id}", headers=anna.auth)).json()
    assert (person["kind"], person["name"], person["phones"], person["emails"]) == (
        "person",
        "Иван Петров",
        ["+79123456789"],
        ["ivan@vector.example"],
    )
    # The deal went through the deal service: default pipeline and stage, history row.
    sales = await stages(http, company)
    deal = (await http.get(f"/api/v1/deals/{deal_id}", headers=anna.auth)).json()
    assert (deal["client_id"], deal["title"], deal["amount"], deal["stage_id"], deal["responsible_id"]) == (
        client_id,
        "10 ноутбуков",
        "250000.00",
        sales["new"]["id"],
        anna.id,
    )
    history = (await http.get(f"/api/v1/deals/{deal_id}/stage-history", headers=anna.auth)).json()["items"]
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [(None, sales["new"]["id"])]

    # Once only; and a converted lead no longer changes.
    again = await http.post(f"{url}/convert", json={"deal": {}}, headers=anna.auth)
    assert again.status_code == 409 and again.json()["client_id"] == client_id
    assert (await http.patch(url, json={"note": "x"}, headers=anna.auth)).status_code == 409
    assert (await http.post(f"{url}/disqualify", json={"reason": "x"}, headers=anna.auth)).status_code == 409

    converted_log = await audit(http, company, action="lead.converted", entity_id=lead["id"])
    assert converted_log[0]["changes"]["status"] == ["new", "converted"]
    assert converted_log[0]["changes"]["deal_id"] == [None, deal_id]
    assert converted_log[0]["actor_id"] == anna.id
    assert {entry["entity_id"] for entry in await audit(http, company, action="client.created")} == {
        str(client_id),
        str(person_id),
    }
    assert [entry["entity_id"] for entry in await audit(http, company, action="deal.created")] == [str(deal_id)]
    assert await audit(http, other, action="lead.converted") == []


async def test_conversion_is_all_or_nothing(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    existing = await http.post(
        "/api/v1/clients",
        json={"kind": "person", "name": "Иван Петров (старый)", "phones": ["+79123456789"]},
        headers=company.auth,
    )
    assert existing.status_code == 201, existing.text
    lead = await new_lead(http, company.auth, name="Иван Петров", phones=["89123456789"])
    url = f"/api/v1/leads/{lead['id']}"
    before = await client_count(http, company)

    # The clients area's duplicate check answers through the conversion; nothing is written.
    duplicate = await http.post(f"{url}/convert", json={"deal": {"amount": 1000}}, headers=company.auth)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "duplicate-client"
    assert [d["id"] for d in duplicate.json()["duplicates"]] == [existing.json()["id"]]
    # A bad deal field is named by its path in the request; the client made before it is gone too.
    bad_deal = await http.post(
        f"{url}/convert", json={"deal": {"amount": "-5", "currency": "рубли"}, "force": True}, headers=company.auth
    )
    assert bad_deal.status_code == 422 and fields(bad_deal) == {"deal.amount", "deal.currency"}
    assert await client_count(http, company) == before
    assert (await http.get(url, headers=company.auth)).json()["status"] == "new"
    assert (await http.get("/api/v1/deals", headers=company.auth)).json()["items"] == []
    assert await audit(http, company, action="lead.converted") == []

    # With force the person becomes a client of its own (no company: the person is the client).
    forced = await http.post(f"{url}/convert", json={"force": True}, headers=company.auth)
    assert forced.status_code == 200, forced.text
    assert forced.json()["person_id"] is None and forced.json()["deal_id"] is None
    assert await client_count(http, company) == before + 1

    # Attaching to an existing client creates no client.
    second = await new_lead(http, company.auth, name="Пётр Иванов")
    attached = await http.post(
        f"/api/v1/leads/{second['id']}/convert",
        json={"client_id": existing.json()["id"], "deal": {"title": "Допродажа"}},
        headers=company.auth,
    )
    assert attached.status_code == 200 and attached.json()["client_id"] == existing.json()["id"]
    assert await client_count(http, company) == before + 1
    deal = (await http.get(f"/api/v1/deals/{attached.json()['deal_id']}", headers=company.auth)).json()
    assert (deal["title"], deal["client_id"]) == ("Допродажа", existing.json()["id"])


async def test_conversion_needs_the_rights_for_what_it_creates(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company = await make_tenant(edition="business")
    operator = await add_staff(http, company, "operator", role="operator")
    anna = await add_staff(http, company, "anna", role="manager")
    lead = await new_lead(http, operator.auth, name="Звонок с сайта", phones=["+79005554433"])
    url = f"/api/v1/leads/{lead['id']}"
    # An operator may create clients but has no deals at all.
    no_deals = await http.post(f"{url}/convert", json={"deal": {}}, headers=operator.auth)
    assert no_deals.status_code == 403 and no_deals.json()["permission"] == "deals.create"
    assert (await http.get(url, headers=operator.auth)).json()["status"] == "new"
    done = await http.post(f"{url}/convert", json={}, headers=operator.auth)
    assert done.status_code == 200 and done.json()["deal_id"] is None
    # A manager cannot attach a lead to a colleague's client.
    hers = await new_lead(http, anna.auth, name="Лид Анны")
    foreign = await seed_client(company, "Чужой клиент", responsible_id=operator.id)
    refused = await http.post(
        f"/api/v1/leads/{hers['id']}/convert", json={"client_id": foreign, "deal": {}}, headers=anna.auth
    )
    assert refused.status_code == 422 and fields(refused) == {"client_id"}
