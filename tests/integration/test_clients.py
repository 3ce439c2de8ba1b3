"""Clients: create, read, list, change, delete; phones, duplicates, rights, audit, two tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from crm.platform.tenancy import tenant_scope
from crm.tenants.activities.tables import Activity
from crm.tenants.clients.tables import Client
from crm.tenants.deals.tables import Deal
from crm.tenants.leads.tables import Lead
from crm.tenants.tasks.tables import Task
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
from tests.integration.helpers import create_client, my_id, seed_deal, seed_task, tenant_of


async def audit(http: httpx.AsyncClient, company: SignedUpTenant, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit", headers=company.auth, params={"entity": "client", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def names(http: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> list[str]:
    response = await http.get("/api/v1/clients", headers=auth, params=params)
    assert response.status_code == 200, response.text
    return [client["name"] for client in response.json()["items"]]


async def test_create_normalises_and_reads_back(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    client = await create_client(
        http,
        company.auth,
        kind="company",
        name="  ООО  «Ромашка» ",
        phones=["8 (912) 345-67-89", "+7 912 345 67 89", "+44 20 7946 0123"],
        emails=["Info@Romashka.RU", "info@romashka.ru"],
        messengers=[{"kind": "Telegram", "handle": "@romashka"}],
        addresses=[{"kind": "office", "text": "Москва, ул. Тверская, 1"}],
        tax_id="7707 083893",
        tags=[" VIP ", "vip", "Опт"],
        custom={"industry": "retail"},
        source="web_form",
        status="prospect",
    )
    assert client["name"] == "ООО «Ромашка»"
    assert client["phones"] == ["+79123456789", "+442079460123"]
    assert client["emails"] == ["info@romashka.ru"]
    assert client["tax_id"] == "7707083893"
    assert client["tags"] == ["vip", "опт"]
    assert client["messengers"] == [{"kind": "telegram", "handle": "@romashka"}]
    assert client["addresses"] == [{"kind": "office", "text": "Москва, ул. Тверская, 1"}]
    assert client["custom"] == {"industry": "retail"}
    assert (client["status"], client["source"]) == ("prospect", "web_form")
    assert client["companies"] == [] and client["people"] == []
    me = await my_id(http, company.auth)
    assert client["responsible_id"] == me and client["author_id"] == me
    got = await http.get(f"/api/v1/clients/{client['id']}", headers=company.auth)
    assert got.status_code == 200 and got.json() == client
    # The other company has no such client, by id or in its list.
    assert (await http.get(f"/api/v1/clients/{client['id']}", headers=other.auth)).status_code == 404
    assert await names(http, other.auth) == []
    created = await audit(http, company, action="client.created")
    assert created[0]["entity_id"] == str(client["id"])
    assert created[0]["changes"]["phones"] == [None, ["+79123456789", "+442079460123"]]


async def test_every_bad_field_is_named_at_once(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    response = await http.post(
        "/api/v1/clients",
        json={
            "kind": "robot",
            "name": " ",
            "phones": ["+7 912 345-67-89", "12", "call me"],
            "emails": ["ok@example.ru", "not-an-email"],
            "messengers": [{"kind": "tg!", "handle": ""}],
            "tax_id": "12-34",
            "status": "vip",
            "tags": ["fine", "x" * 51],
            "custom": {"industry": "space", "unknown": 1},
        },
        headers=company.auth,
    )
    assert response.status_code == 422, response.text
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {
        "kind",
        "name",
        "phones.1",
        "phones.2",
        "emails.1",
        "messengers.0.kind",
        "messengers.0.handle",
        "tax_id",
        "status",
        "tags.1",
        "custom.industry",
        "custom.unknown",
    }
    company_birthday = await http.post(
        "/api/v1/clients", json={"kind": "company", "name": "ООО Тест", "birthday": "1990-01-01"}, headers=company.auth
    )
    assert company_birthday.status_code == 422 and company_birthday.json()["errors"][0]["field"] == "birthday"
    unknown_field = await http.post(
        "/api/v1/clients", json={"kind": "person", "name": "A", "x": 1}, headers=company.auth
    )
    assert unknown_field.status_code in (400, 422)
    assert await names(http, company.auth) == []  # nothing half-written


async def test_duplicates_answer_409_unless_forced(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    first = await create_client(
        http, company.auth, kind="company", name="ООО Альфа", phones=["+79123456789"], tax_id="7707083893"
    )
    again = await http.post(
        "/api/v1/clients",
        json={"kind": "company", "name": "Альфа (дубль)", "phones": ["8 912 345 67 89"], "tax_id": "7707083893"},
        headers=company.auth,
    )
    assert again.status_code == 409, again.text
    body = again.json()
    assert body["code"] == "duplicate-client"
    assert body["duplicates"] == [{"id": first["id"], "name": "ООО Альфа", "matched_on": ["phone", "tax_id"]}]
    forced = await http.post(
        "/api/v1/clients",
        params={"force": "true"},
        json={"kind": "company", "name": "Альфа (дубль)", "phones": ["8 912 345 67 89"]},
        headers=company.auth,
    )
    assert forced.status_code == 201
    # Another company may have a client with the same phone: tenants never see each other.
    await create_client(http, other.auth, name="Пётр", phones=["+79123456789"])

    # A manager with "own" scope learns only that a duplicate exists, not whose.
    manager = await add_staff(http, company, "manager", role="manager")
    hidden = await http.post(
        "/api/v1/clients",
        json={"kind": "person", "name": "Кто-то", "emails": [], "tax_id": "7707083893"},
        headers=manager.auth,
    )
    assert hidden.status_code == 409
    assert hidden.json()["duplicates"] == [{"id": None, "name": None, "matched_on": ["tax_id"]}]

    # On update, only values the change adds are checked.
    mine = await create_client(http, company.auth, name="Борис", emails=["boris@example.ru"])
    clash = await http.patch(
        f"/api/v1/clients/{mine['id']}", json={"phones": ["+7 912 345-67-89"]}, headers=company.auth
    )
    assert clash.status_code == 409 and {d["id"] for d in clash.json()["duplicates"]} == {
        first["id"],
        forced.json()["id"],
    }
    same = await http.patch(
        f"/api/v1/clients/{forced.json()['id']}", json={"name": "ООО Альфа-2"}, headers=company.auth
    )
    assert same.status_code == 200


async def test_manager_sees_and_changes_only_own_clients(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(edition="business")
    other = await make_tenant(edition="business")
    admin_client = await create_client(http, company.auth, name="Клиент директора")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    annas = await create_client(http, anna.auth, name="Клиент Анны")
    assert annas["responsible_id"] == anna.id and annas["author_id"] == anna.id

    assert await names(http, anna.auth) == ["Клиент Анны"]
    assert await names(http, boris.auth) == []
    assert set(await names(http, company.auth)) == {"Клиент директора", "Клиент Анны"}
    for method, path, body in (
        ("GET", f"/api/v1/clients/{admin_client['id']}", None),
        ("PATCH", f"/api/v1/clients/{admin_client['id']}", {"name": "Взлом"}),
        ("PATCH", f"/api/v1/clients/{annas['id']}", {"name": "Взлом"}),
    ):
        response = await http.request(method, path, json=body, headers=boris.auth)
        assert response.status_code == 404, (method, path, response.text)
    # Managers may not delete at all, nor hand a client to someone else.
    assert (await http.delete(f"/api/v1/clients/{annas['id']}", headers=anna.auth)).status_code == 403
    given = await http.post(
        "/api/v1/clients", json={"kind": "person", "name": "Для Бориса", "responsible_id": boris.id}, headers=anna.auth
    )
    assert given.status_code == 403
    moved = await http.patch(f"/api/v1/clients/{annas['id']}", json={"responsible_id": boris.id}, headers=anna.auth)
    assert moved.status_code == 403
    # The admin may: the client becomes Boris's, and Boris now sees it.
    assigned = await http.patch(
        f"/api/v1/clients/{annas['id']}", json={"responsible_id": boris.id}, headers=company.auth
    )
    assert assigned.status_code == 200 and assigned.json()["responsible_id"] == boris.id
    assert await names(http, boris.auth) == ["Клиент Анны"]
    # Anna wrote it, so "own" still covers it for her (responsible or author).
    assert await names(http, anna.auth) == ["Клиент Анны"]
    nobody = await http.post(
        "/api/v1/clients", json={"kind": "person", "name": "X", "responsible_id": 999999}, headers=company.auth
    )
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "responsible_id"
    # Nothing of this company is visible to or changeable by the other company's admin.
    assert (
        await http.patch(f"/api/v1/clients/{annas['id']}", json={"name": "X"}, headers=other.auth)
    ).status_code == 404
    assert (await http.delete(f"/api/v1/clients/{annas['id']}", headers=other.auth)).status_code == 404


async def test_update_is_partial_and_audits_changed_fields(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    client = await create_client(
        http, company.auth, name="Анна Кузнецова", phones=["+79123456789"], custom={"channel": "website"}, tags=["a"]
    )
    response = await http.patch(
        f"/api/v1/clients/{client['id']}",
        json={"status": "client", "custom": {"industry": "it"}, "birthday": "1990-05-17", "name": "Анна Кузнецова"},
        headers=company.auth,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["custom"] == {"channel": "website", "industry": "it"}  # merged, not replaced
    assert changed["status"] == "client" and changed["birthday"] == "1990-05-17"
    assert changed["phones"] == ["+79123456789"] and changed["tags"] == ["a"]  # left out: kept
    assert changed["updated_at"] > client["updated_at"]
    removed = await http.patch(
        f"/api/v1/clients/{client['id']}", json={"custom": {"channel": None}, "tax_id": None}, headers=company.auth
    )
    assert removed.json()["custom"] == {"industry": "it"}
    bad = await http.patch(
        f"/api/v1/clients/{client['id']}",
        json={"phones": ["+7 912", "+79031112233"], "status": "x"},
        headers=company.auth,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"phones.0", "status"}

    entries = await audit(http, company, action="client.updated", entity_id=str(client["id"]))
    # Newest first; the name was sent unchanged and is not in the log.
    assert entries[1]["changes"] == {
        "status": ["lead", "client"],
        "custom": [{"channel": "website"}, {"channel": "website", "industry": "it"}],
        "birthday": [None, "1990-05-17"],
    }
    assert entries[0]["changes"] == {"custom": [{"channel": "website", "industry": "it"}, {"industry": "it"}]}
    assert len(entries) == 2  # the invalid change wrote nothing
    assert await audit(http, other) == []


async def test_delete_refuses_clients_with_deals(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    client = await create_client(http, company.auth, kind="company", name="ООО Сделка", phones=["+74951234567"])
    deal_id = await seed_deal(company, client["id"], responsible_id=await my_id(http, company.auth))
    refused = await http.delete(f"/api/v1/clients/{client['id']}", headers=company.auth)
    assert refused.status_code == 409 and "deal" in refused.json()["detail"]
    assert (await http.delete(f"/api/v1/clients/{client['id']}", headers=other.auth)).status_code == 404
    async with tenant_scope(await tenant_of(company)):
        await Deal.delete().where(Deal.id == deal_id)
    assert (await http.delete(f"/api/v1/clients/{client['id']}", headers=company.auth)).status_code == 204
    assert (await http.get(f"/api/v1/clients/{client['id']}", headers=company.auth)).status_code == 404
    deleted = await audit(http, company, action="client.deleted")
    assert deleted[0]["entity_id"] == str(client["id"])
    assert deleted[0]["changes"]["name"] == ["ООО Сделка", None]


async def test_list_filters_sorts_and_pages(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    await create_client(
        http, company.auth, name="ИВАНОВ Пётр", phones=["+79123456789"], tags=["VIP"], custom={"industry": "retail"}
    )
    await create_client(http, company.auth, name="Иванова Алёна", emails=["alena@example.ru"], status="client")
    await create_client(
        http, company.auth, kind="company", name="Brightline Ltd", source="import", custom={"industry": "it"}
    )
    await create_client(http, other.auth, name="Иванов Чужой", phones=["+79123456789"])

    assert await names(http, company.auth, q="иванов", sort="name") == ["ИВАНОВ Пётр", "Иванова Алёна"]
    assert await names(http, company.auth, q="петр") == ["ИВАНОВ Пётр"]  # ё = е
    assert await names(http, company.auth, q="алена") == ["Иванова Алёна"]
    for phone in ("+7 912 345-67-89", "89123456789", "8 (912) 345 67 89"):
        assert await names(http, company.auth, q=phone) == ["ИВАНОВ Пётр"], phone
    assert await names(http, company.auth, q="ALENA@example.ru") == ["Иванова Алёна"]
    assert await names(http, company.auth, q="100%_") == []
    assert await names(http, company.auth, kind="company") == ["Brightline Ltd"]
    assert await names(http, company.auth, status="client") == ["Иванова Алёна"]
    assert await names(http, company.auth, source="import") == ["Brightline Ltd"]
    assert await names(http, company.auth, tag="vip") == ["ИВАНОВ Пётр"]
    assert await names(http, company.auth, **{"custom.industry": "it"}) == ["Brightline Ltd"]
    bad_custom = await http.get("/api/v1/clients", params={"custom.nope": "1"}, headers=company.auth)
    assert bad_custom.status_code == 422 and bad_custom.json()["errors"][0]["field"] == "custom.nope"
    me = await my_id(http, company.auth)
    assert len(await names(http, company.auth, responsible_id=me)) == 3
    assert await names(http, company.auth, sort="-name") == ["Иванова Алёна", "ИВАНОВ Пётр", "Brightline Ltd"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert len(await names(http, company.auth, created_at_to=future)) == 3
    assert await names(http, company.auth, created_at_from=future) == []
    naive = await http.get("/api/v1/clients", params={"created_at_from": "2024-01-01T00:00:00"}, headers=company.auth)
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "created_at_from"
    assert (await http.get("/api/v1/clients", params={"sort": "phones"}, headers=company.auth)).status_code == 422

    for sort in ("id", "-created_at", "updated_at", "name"):
        walked, cursor = [], None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/v1/clients", params=params, headers=company.auth)).json()
            walked += [client["id"] for client in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = [
            c["id"]
            for c in (await http.get("/api/v1/clients", params={"sort": sort}, headers=company.auth)).json()["items"]
        ]
        assert walked == everything and len(set(walked)) == 3, sort


async def test_people_at_companies(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    firm = await create_client(http, company.auth, kind="company", name="ООО Вектор")
    anna = await create_client(http, company.auth, name="Анна Смирнова")
    oleg = await create_client(http, company.auth, name="Олег Петров")
    for person, position in ((anna, "Главный бухгалтер"), (oleg, "Директор")):
        response = await http.post(
            f"/api/v1/clients/{person['id']}/companies",
            json={"company_id": firm["id"], "position": position},
            headers=company.auth,
        )
        assert response.status_code == 200, response.text
    assert response.json()["companies"] == [{"id": firm["id"], "name": "ООО Вектор", "position": "Директор"}]
    people = (await http.get(f"/api/v1/clients/{firm['id']}", headers=company.auth)).json()["people"]
    assert people == [
        {"id": anna["id"], "name": "Анна Смирнова", "position": "Главный бухгалтер"},
        {"id": oleg["id"], "name": "Олег Петров", "position": "Директор"},
    ]
    listed = (await http.get("/api/v1/clients", params={"kind": "company"}, headers=company.auth)).json()["items"]
    assert len(listed[0]["people"]) == 2
    wrong = await http.post(
        f"/api/v1/clients/{firm['id']}/companies", json={"company_id": anna["id"]}, headers=company.auth
    )
    assert wrong.status_code == 422
    assert {e["field"] for e in wrong.json()["errors"]} == {"person_id", "company_id"}
    # The other company cannot link into or out of this one's clients.
    foreign = await create_client(http, other.auth, name="Чужой")
    cross = await http.post(
        f"/api/v1/clients/{foreign['id']}/companies", json={"company_id": firm["id"]}, headers=other.auth
    )
    assert cross.status_code == 422
    gone = await http.delete(f"/api/v1/clients/{anna['id']}/companies/{firm['id']}", headers=company.auth)
    assert gone.status_code == 204
    assert (
        await http.delete(f"/api/v1/clients/{anna['id']}/companies/{firm['id']}", headers=company.auth)
    ).status_code == 404
    assert [
        p["id"] for p in (await http.get(f"/api/v1/clients/{firm['id']}", headers=company.auth)).json()["people"]
    ] == [oleg["id"]]
    kind_change = await http.patch(f"/api/v1/clients/{oleg['id']}", json={"kind": "company"}, headers=company.auth)
    assert kind_change.status_code == 422 and kind_change.json()["errors"][0]["field"] == "kind"
    actions = [entry["action"] for entry in await audit(http, company, entity_id=str(anna["id"]))]
    assert actions[:2] == ["client.company_unlinked", "client.company_linked"]


async def test_merge_moves_everything_onto_the_survivor(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    me = await my_id(http, company.auth)
    survivor = await create_client(
        http, company.auth, name="Пётр Иванов", phones=["+79123456789"], tags=["vip"], custom={"channel": "website"}
    )
    duplicate = await create_client(
        http,
        company.auth,
        name="Иванов П.",
        phones=["+79031112233"],
        emails=["petr@example.ru"],
        tags=["опт", "vip"],
        custom={"channel": "referral", "industry": "it"},
        birthday="1985-03-02",
    )
    firm = await create_client(http, company.auth, kind="company", name="ООО Вектор")
    await http.post(
        f"/api/v1/clients/{duplicate['id']}/companies", json={"company_id": firm["id"]}, headers=company.auth
    )
    deal_id = await seed_deal(company, duplicate["id"], responsible_id=me, title="Поставка бумаги")
    task_id = await seed_task(company, duplicate["id"], "Перезвонить", me)
    early = datetime(2024, 1, 1, tzinfo=UTC)
    late = datetime(2024, 6, 1, tzinfo=UTC)
    async with tenant_scope(await tenant_of(company)):
        await Activity.insert(Activity(kind="call", client_id=duplicate["id"], author_id=me))
        lead_rows = await Lead.insert(Lead(name="Пётр", client_id=duplicate["id"])).returning(Lead.id)
        await Client.update({Client.first_contact_at: early}).where(Client.id == duplicate["id"])
        await Client.update({Client.last_contact_at: late}).where(Client.id == survivor["id"])

    manager = await add_staff(http, company, "manager", role="manager")
    refused = await http.post(
        f"/api/v1/clients/{survivor['id']}/merge", json={"other_id": duplicate["id"]}, headers=manager.auth
    )
    assert refused.status_code == 403
    cross = await http.post(
        f"/api/v1/clients/{survivor['id']}/merge", json={"other_id": duplicate["id"]}, headers=other.auth
    )
    assert cross.status_code == 404
    kinds = await http.post(
        f"/api/v1/clients/{survivor['id']}/merge", json={"other_id": firm["id"]}, headers=company.auth
    )
    assert kinds.status_code == 422

    response = await http.post(
        f"/api/v1/clients/{survivor['id']}/merge", json={"other_id": duplicate["id"]}, headers=company.auth
    )
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["phones"] == ["+79123456789", "+79031112233"]
    assert merged["emails"] == ["petr@example.ru"]
    assert merged["tags"] == ["vip", "опт"]
    assert merged["custom"] == {"channel": "website", "industry": "it"}  # the survivor's own values win
    assert merged["birthday"] == "1985-03-02" and merged["name"] == "Пётр Иванов"
    assert merged["companies"] == [{"id": firm["id"], "name": "ООО Вектор", "position": ""}]
    assert datetime.fromisoformat(merged["first_contact_at"]) == early
    assert datetime.fromisoformat(merged["last_contact_at"]) == late
    assert (await http.get(f"/api/v1/clients/{duplicate['id']}", headers=company.auth)).status_code == 404
    async with tenant_scope(await tenant_of(company)):
        assert await Deal.select(Deal.client_id).where(Deal.id == deal_id).first() == {"client_id": survivor["id"]}
        assert await Task.select(Task.client_id).where(Task.id == task_id).first() == {"client_id": survivor["id"]}
        assert await Activity.count().where(Activity.client_id == survivor["id"]) == 1
        assert await Lead.select(Lead.client_id).where(Lead.id == lead_rows[0]["id"]).first() == {
            "client_id": survivor["id"]
        }
    merged_entry = (await audit(http, company, action="client.merged"))[0]
    assert merged_entry["entity_id"] == str(survivor["id"])
    assert merged_entry["changes"]["merged_client_id"] == [None, duplicate["id"]]
    assert merged_entry["changes"]["moved_deals"] == [0, 1]
    assert merged_entry["changes"]["phones"] == [["+79123456789"], ["+79123456789", "+79031112233"]]
    deleted = (await audit(http, company, action="client.deleted"))[0]
    assert deleted["entity_id"] == str(duplicate["id"]) and deleted["changes"]["merged_into"] == [None, survivor["id"]]
    deal_audit = await http.get(
        "/api/v1/audit", params={"entity": "deal", "entity_id": str(deal_id)}, headers=company.auth
    )
    assert deal_audit.json()["items"][0]["changes"] == {"client_id": [duplicate["id"], survivor["id"]]}
    assert await audit(http, other) == []


async def test_custom_fields_need_the_module(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    start = await make_tenant(edition="start")
    response = await http.post(
        "/api/v1/clients", json={"kind": "person", "name": "Анна", "custom": {"industry": "it"}}, headers=start.auth
    )
    assert response.status_code == 402 and response.json()["module"] == "custom_fields"
    plain = await create_client(http, start.auth, name="Анна", phones=["8 912 345 67 89"])
    assert plain["custom"] == {} and plain["phones"] == ["+79123456789"]
