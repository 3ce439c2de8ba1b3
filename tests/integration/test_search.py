"""Search: clients by name (any case, ё = е), phone in any format, e-mail and tax id; deals and
tasks by title; ranked best first; within the caller's rights; never across companies."""

from __future__ import annotations

from typing import Any

import httpx

from crm.platform.tenancy import scope_connection, tenant_scope
from crm.tenants.clients.tables import SEARCH_PHONES
from crm.tenants.search.services import CONTAINED_CAP
from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import create_client, my_id, seed_deal, seed_task, tenant_of


async def search(http: httpx.AsyncClient, auth: dict[str, str], q: str, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/search", params={"q": q, **params}, headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True), q  # best first
    return items


def titles(items: list[dict[str, Any]]) -> list[str]:
    return [item["title"] for item in items]


async def test_names_phones_emails_and_tax_ids(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    petr = await create_client(http, company.auth, name="ИВАНОВ Пётр", phones=["8 (912) 345-67-89"])
    await create_client(http, company.auth, name="Иванова Анна Сергеевна", emails=["anna@example.ru"])
    await create_client(http, company.auth, kind="company", name="Brightline Logistics Ltd", tax_id="7707083893")
    await create_client(http, company.auth, kind="company", name="ООО «Северный ветер»")
    await create_client(http, other.auth, name="Иванов Пётр", phones=["+79123456789"], emails=["anna@example.ru"])

    found = await search(http, company.auth, "Иванов")
    assert titles(found) == ["ИВАНОВ Пётр", "Иванова Анна Сергеевна"]
    assert found[0] == {
        "type": "client",
        "id": petr["id"],
        "title": "ИВАНОВ Пётр",
        "subtitle": "person · +79123456789",
        "score": found[0]["score"],
    }
    assert titles(await search(http, company.auth, "петр")) == ["ИВАНОВ Пётр"]
    assert titles(await search(http, company.auth, "ПЁТР")) == ["ИВАНОВ Пётр"]
    assert titles(await search(http, company.auth, "brightline")) == ["Brightline Logistics Ltd"]
    assert titles(await search(http, company.auth, "северный")) == ["ООО «Северный ветер»"]
    for phone in ("+7 912 345-67-89", "89123456789", "9123456789", "8 912 345 67 89"):
        hits = await search(http, company.auth, phone)
        assert titles(hits) == ["ИВАНОВ Пётр"] and hits[0]["score"] == 1.0, phone
    suffix = await search(http, company.auth, "345-67-89")
    assert titles(suffix) == ["ИВАНОВ Пётр"] and suffix[0]["score"] < 1.0
    assert titles(await search(http, company.auth, "ANNA@example.ru")) == ["Иванова Анна Сергеевна"]
    assert titles(await search(http, company.auth, "7707083893")) == ["Brightline Logistics Ltd"]
    assert await search(http, company.auth, "Сидоров") == []
    # The other company finds only its own client, with the same phone and e-mail.
    theirs = await search(http, other.auth, "+7 912 345-67-89")
    assert titles(theirs) == ["Иванов Пётр"]
    assert titles(await search(http, other.auth, "brightline")) == []


async def test_exact_contacts_rank_above_names(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    # One client is named like an e-mail fragment, the other has that exact e-mail.
    await create_client(http, company.auth, name="Sales Example", phones=["+79031112233"])
    owner = await create_client(http, company.auth, name="Ольга Петрова", emails=["sales@example.ru"])
    hits = await search(http, company.auth, "sales@example.ru")
    assert hits[0]["id"] == owner["id"] and hits[0]["score"] == 1.0
    assert len({hit["id"] for hit in hits}) == len(hits)  # one entry per client
    # An exact name outranks a longer name that contains it.
    await create_client(http, company.auth, name="Петров")
    await create_client(http, company.auth, name="Петров Сергей Николаевич")
    assert titles(await search(http, company.auth, "петров"))[0] == "Петров"
    limited = await search(http, company.auth, "петров", limit=1)
    assert len(limited) == 1
    assert await search(http, other.auth, "петров") == []


async def test_deals_and_tasks_within_rights(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    annas_client = await create_client(http, anna.auth, name="Смирнов Алексей", phones=["+79161234567"])
    admins_client = await create_client(http, company.auth, name="Смирнова Ольга")
    await seed_deal(company, annas_client["id"], responsible_id=anna.id, title="Поставка оборудования Смирнову")
    await seed_deal(company, admins_client["id"], responsible_id=admin_id, title="Поставка бумаги")
    await seed_task(company, annas_client["id"], "Позвонить Смирнову про поставку", anna.id)
    await seed_task(company, None, "Поставка: проверить склад", admin_id)

    everything = await search(http, company.auth, "поставка")
    assert {hit["type"] for hit in everything} == {"deal", "task"}
    assert len(everything) == 4
    deal = next(hit for hit in everything if hit["title"] == "Поставка бумаги")
    assert deal["subtitle"].startswith("Смирнова Ольга · 0.00 RUB")

    annas = await search(http, anna.auth, "поставка")
    assert sorted(titles(annas)) == ["Позвонить Смирнову про поставку", "Поставка оборудования Смирнову"]
    mine = await search(http, anna.auth, "смирнов")
    assert titles(mine)[0] == "Смирнов Алексей" and "Смирнова Ольга" not in titles(mine)
    assert {hit["type"] for hit in mine} == {"client", "deal", "task"}
    # Boris finds nothing of Anna's or the admin's, however he asks.
    for q in ("смирнов", "поставка", "+7 916 123-45-67"):
        assert await search(http, boris.auth, q) == [], q
    assert await search(http, other.auth, "поставка") == []


async def test_query_is_validated(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    await create_client(http, company.auth, name="Ли")
    short = await http.get("/api/v1/search", params={"q": " x "}, headers=company.auth)
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "q"
    assert (await http.get("/api/v1/search", params={"q": "ли", "limit": 51}, headers=company.auth)).status_code == 422
    assert (await http.get("/api/v1/search", headers=company.auth)).status_code == 400
    assert (await http.get("/api/v1/search", params={"q": "ли"})).status_code == 401
    assert titles(await search(http, company.auth, "Ли")) == ["Ли"]
    assert await search(http, other.auth, "Ли") == []
    assert await search(http, company.auth, "100%") == []


async def test_phone_suffix_is_served_by_its_index(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    both = await create_client(http, company.auth, name="Орлов Игорь", phones=["+79161112233", "+74957654321"])
    await create_client(http, company.auth, name="Соколов Олег", phones=["+79167654300"])
    await create_client(http, other.auth, name="Орлов Чужой", phones=["+79031112233"])

    # The end of either number, in any grouping; the middle of a number is not an end.
    for q in ("112233", "11-22-33", "765-43-21", "7654321"):
        hits = await search(http, company.auth, q)
        assert [hit["id"] for hit in hits] == [both["id"]] and hits[0]["score"] == 0.95, q
    assert await search(http, company.auth, "916111") == []
    assert titles(await search(http, other.auth, "11-22-33")) == ["Орлов Чужой"]

    # The statement's expression is the index's: with sequential scans priced out the
    # planner must be able to answer it from clients_phones_trgm.
    async with tenant_scope(await tenant_of(company)):
        connection = scope_connection()
        await connection.execute("SET LOCAL enable_seqscan = off")
        plan = await connection.fetch(f"EXPLAIN SELECT id FROM clients WHERE {SEARCH_PHONES} LIKE $1", "%112233 %")
    assert "clients_phones_trgm" in " ".join(row[0] for row in plan)


async def test_contacts_are_looked_up_exactly_and_names_are_not_searched(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    admin_id = await my_id(http, company.auth)
    owner = await create_client(http, company.auth, name="Ольга Петрова", emails=["info@nordic.ru"])
    # Names and titles that hold the very text typed: not what a phone, e-mail or tax id means.
    named = await create_client(http, company.auth, kind="company", name="info@nordic.ru 79161234567")
    await seed_task(company, named["id"], "Написать на info@nordic.ru", admin_id)
    await seed_deal(company, named["id"], responsible_id=admin_id, title="Счёт 7707083893")
    await create_client(http, company.auth, kind="company", name="Северсталь", tax_id="7707083893")
    await create_client(http, company.auth, name="Лебедев", phones=["+79161234567"])

    assert titles(await search(http, company.auth, "info@nordic.ru")) == ["Ольга Петрова"]
    assert titles(await search(http, company.auth, "7707083893")) == ["Северсталь"]
    exact = await search(http, company.auth, "8 916 123-45-67")
    assert titles(exact) == ["Лебедев"] and exact[0]["score"] == 1.0
    # An address nobody has finds nothing, not names like it.
    assert await search(http, company.auth, "info@nordic.com") == []
    # Text with a word in it is a name again, and so are short numbers (no phone has four digits).
    assert owner["id"] in {hit["id"] for hit in await search(http, company.auth, "петрова")}
    await seed_deal(company, owner["id"], responsible_id=admin_id, title="Контракт 2027")
    assert titles(await search(http, company.auth, "2027")) == ["Контракт 2027"]
    assert await search(http, other.auth, "info@nordic.ru") == []
    assert await search(http, other.auth, "2027") == []


async def test_misspelt_and_reordered_names_within_rights(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(edition="business"), await make_tenant(edition="business")
    anna = await add_staff(http, company, "anna", role="manager")
    boris = await add_staff(http, company, "boris", role="manager")
    mine = await create_client(http, anna.auth, name="Смирнов Алексей", phones=["+79161230001"])
    await create_client(http, company.auth, name="Смирнова Ольга", phones=["+79161230002"])
    await create_client(http, company.auth, kind="company", name="Nordic Logistics LLC")
    await create_client(http, other.auth, name="Смирнов Алексей", phones=["+79161230001"])
    await seed_task(company, mine["id"], "Позвонить Смирнову", anna.id)

    # A typo in the only word: tier 1 finds nothing, the spellings like it find the rest.
    everyone = await search(http, company.auth, "смирнофф")
    assert sorted(titles(everyone)) == ["Позвонить Смирнову", "Смирнов Алексей", "Смирнова Ольга"]
    assert titles(await search(http, company.auth, "Logistcs")) == ["Nordic Logistics LLC"]
    # Words in another order, or one of them misspelt.
    assert titles(await search(http, company.auth, "Алексей Смирнов"))[0] == "Смирнов Алексей"
    assert titles(await search(http, company.auth, "алексей смирнофф"))[0] == "Смирнов Алексей"
    # Anna's clients and tasks only, whatever the spelling; Boris's are none of these.
    annas = await search(http, anna.auth, "смирнофф")
    assert {(hit["type"], hit["title"]) for hit in annas} == {
        ("client", "Смирнов Алексей"),
        ("task", "Позвонить Смирнову"),
    }
    for q in ("смирнофф", "смирнов", "Logistcs", "11-22-33", "+79161230001", "230001"):
        assert await search(http, boris.auth, q) == [], q
    assert [hit["type"] for hit in await search(http, other.auth, "смирнофф")] == ["client"]


async def test_a_common_word_returns_the_closest_names_first(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    tenant = await tenant_of(company)
    # More rows hold the word than one search reads or scores (CONTAINED_CAP), written at once.
    async with tenant_scope(tenant):
        await scope_connection().execute(
            "INSERT INTO clients (kind, name, phones, emails, tags) "
            "SELECT 'company', 'Nordic Trading Company ' || n, '{}', '{}', '{}' FROM generate_series(1, $1) AS n",
            CONTAINED_CAP + 200,
        )
    exact = await create_client(http, company.auth, kind="company", name="Nordic")
    hits = await search(http, company.auth, "nordic", limit=10)
    assert len(hits) == 10 and hits[0]["id"] == exact["id"]
    assert all("Nordic" in hit["title"] for hit in hits)
    assert await search(http, other.auth, "nordic") == []
