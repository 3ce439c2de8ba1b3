"""Company settings: name, time zone, locale and the phone region new numbers are read in."""

from __future__ import annotations

import httpx

from tests.conftest import TenantFactory, add_staff
from tests.integration.helpers import create_client


async def test_read_and_change_company_settings(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant(company="Северный ветер", timezone="Europe/Moscow", locale="ru")
    other = await make_tenant(company="Brightline", timezone="Europe/London", locale="en")
    settings = await http.get("/api/v1/settings/company", headers=company.auth)
    assert settings.status_code == 200
    assert settings.json() == {
        "name": "Северный ветер",
        "timezone": "Europe/Moscow",
        "locale": "ru",
        "phone_region": "RU",
    }
    assert (await http.get("/api/v1/settings/company", headers=other.auth)).json()["phone_region"] == "GB"

    changed = await http.patch(
        "/api/v1/settings/company",
        json={"name": "  Северный ветер Plus ", "timezone": "Asia/Almaty", "phone_region": "kz"},
        headers=company.auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "name": "Северный ветер Plus",
        "timezone": "Asia/Almaty",
        "locale": "ru",
        "phone_region": "KZ",
    }
    me = (await http.get("/api/v1/me", headers=company.auth)).json()["tenant"]
    assert (me["name"], me["timezone"]) == ("Северный ветер Plus", "Asia/Almaty")
    # The other company is untouched.
    assert (await http.get("/api/v1/settings/company", headers=other.auth)).json()["name"] == "Brightline"

    entries = (
        await http.get("/api/v1/audit", params={"action": "settings.company_updated"}, headers=company.auth)
    ).json()["items"]
    assert entries[0]["changes"] == {
        "name": ["Северный ветер", "Северный ветер Plus"],
        "timezone": ["Europe/Moscow", "Asia/Almaty"],
        "phone_region": ["RU", "KZ"],
    }
    assert (await http.get("/api/v1/audit", params={"action": "settings.company_updated"}, headers=other.auth)).json()[
        "items"
    ] == []


async def test_bad_values_and_rights(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    bad = await http.patch(
        "/api/v1/settings/company",
        json={"name": "", "timezone": "Mars/Olympus", "locale": "de", "phone_region": "XX"},
        headers=company.auth,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "timezone", "locale", "phone_region"}
    manager = await add_staff(http, company, "manager", role="manager")
    assert (await http.get("/api/v1/settings/company", headers=manager.auth)).status_code == 403
    assert (
        await http.patch("/api/v1/settings/company", json={"locale": "en"}, headers=manager.auth)
    ).status_code == 403
    assert (await http.get("/api/v1/settings/company", headers=company.auth)).json()["locale"] == "ru"
    assert (await http.get("/api/v1/settings/company", headers=other.auth)).json()["locale"] == "ru"


async def test_phones_typed_after_a_region_change_read_in_the_new_region(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    russian = await create_client(http, company.auth, name="Анна", phones=["8 (912) 345-67-89"])
    assert russian["phones"] == ["+79123456789"]
    response = await http.patch("/api/v1/settings/company", json={"phone_region": "GB"}, headers=company.auth)
    assert response.status_code == 200
    british = await create_client(http, company.auth, name="Oliver", phones=["020 7946 0123"])
    assert british["phones"] == ["+442079460123"]
    # Stored numbers stay as they were; the other company still reads Russian numbers.
    assert (await http.get(f"/api/v1/clients/{russian['id']}", headers=company.auth)).json()["phones"] == [
        "+79123456789"
    ]
    theirs = await create_client(http, other.auth, name="Пётр", phones=["8 (912) 345-67-89"])
    assert theirs["phones"] == ["+79123456789"]
    found = await http.get("/api/v1/search", params={"q": "020 7946 0123"}, headers=company.auth)
    assert [hit["id"] for hit in found.json()["items"]] == [british["id"]]
