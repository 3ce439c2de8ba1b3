"""Users' profiles (name, language, timezone, working hours, birthday) and several roles per user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import TenantFactory, add_staff


async def test_users_edit_their_profile_and_admins_edit_anyones(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "profile", role="operator")
    me = (await http.get("/api/v1/me", headers=staff.auth)).json()["user"]
    assert me["roles"] == ["operator"]
    assert me["working_hours"] == {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}

    changed = await http.patch(
        "/api/v1/me",
        json={
            "locale": "ru",
            "timezone": "Asia/Yekaterinburg",
            "working_hours": {"days": [5, 1, 1], "start": "08:30", "end": "17:00"},
        },
        headers=staff.auth,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["timezone"] == "Asia/Yekaterinburg"
    assert changed.json()["working_hours"] == {"days": [1, 5], "start": "08:30", "end": "17:00"}
    bad = await http.patch(
        "/api/v1/me",
        json={
            "locale": "de",
            "timezone": "Mars/Olympus",
            "name": " ",
            "working_hours": {"days": [0], "start": "18:00", "end": "09:00"},
        },
        headers=staff.auth,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {
        "locale",
        "timezone",
        "name",
        "working_hours.days",
        "working_hours.end",
    }
    # Users may not give themselves roles through their profile.
    assert (await http.patch("/api/v1/me", json={"roles": ["admin"]}, headers=staff.auth)).status_code == 422

    # The admin edits the same user; the other company's admin cannot reach them.
    admin_edit = await http.patch(f"/api/v1/users/{staff.id}", json={"name": "Пётр Профилев"}, headers=company.auth)
    assert admin_edit.json()["name"] == "Пётр Профилев"
    assert (await http.patch(f"/api/v1/users/{staff.id}", json={"name": "x"}, headers=other.auth)).status_code == 404
    log = (
        await http.get("/api/v1/audit", params={"action": "user.updated", "entity_id": staff.id}, headers=company.auth)
    ).json()
    assert {"timezone", "locale", "working_hours"} <= set(log["items"][-1]["changes"])


async def test_several_roles_grant_the_widest_of_their_rights(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "multi", role="operator")
    # An operator may not see deals; with head_of_sales as a second role, they may.
    assert (await http.get("/api/v1/deals", headers=staff.auth)).status_code == 403
    both = await http.patch(
        f"/api/v1/users/{staff.id}", json={"roles": ["operator", "head_of_sales"]}, headers=company.auth
    )
    assert both.status_code == 200, both.text
    assert (both.json()["role"], both.json()["roles"]) == ("operator", ["operator", "head_of_sales"])
    assert (await http.get("/api/v1/deals", headers=staff.auth)).status_code == 200
    # Unknown roles and mixed fields are named; nothing changes.
    wrong = await http.patch(f"/api/v1/users/{staff.id}", json={"roles": ["operator", "pilot"]}, headers=company.auth)
    assert [e["field"] for e in wrong.json()["errors"]] == ["roles.1"]
    mixed = await http.patch(
        f"/api/v1/users/{staff.id}", json={"role": "admin", "roles": ["admin"]}, headers=company.auth
    )
    assert mixed.status_code == 422
    # Back to one role: the extra right is gone on the very next request.
    single = await http.patch(f"/api/v1/users/{staff.id}", json={"roles": ["operator"]}, headers=company.auth)
    assert single.json()["roles"] == ["operator"]
    assert (await http.get("/api/v1/deals", headers=staff.auth)).status_code == 403
    assert (await http.get(f"/api/v1/users/{staff.id}", headers=other.auth)).status_code == 404


async def test_birthdays_are_set_by_the_user_or_an_admin_validated_and_audited(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    staff = await add_staff(http, company, "birthday", role="operator")
    assert (await http.get("/api/v1/me", headers=staff.auth)).json()["user"]["birthday"] is None

    own = await http.patch("/api/v1/me", json={"birthday": "1990-02-28"}, headers=staff.auth)
    assert own.status_code == 200, own.text
    assert own.json()["birthday"] == "1990-02-28"
    assert (await http.get(f"/api/v1/users/{staff.id}", headers=company.auth)).json()["birthday"] == "1990-02-28"

    # Not in the future, not before 1900, a real date: each refused naming the field, nothing changed.
    tomorrow_everywhere = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    for wrong in (tomorrow_everywhere, "1899-12-31", "1990-02-30", "28.02.1990", 19900228):
        refused = await http.patch("/api/v1/me", json={"birthday": wrong}, headers=staff.auth)
        assert refused.status_code in (400, 422), (wrong, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert [error["field"] for error in refused.json()["errors"]] == ["birthday"], (wrong, refused.text)
    admin_refused = await http.patch(
        f"/api/v1/users/{staff.id}", json={"birthday": tomorrow_everywhere}, headers=company.auth
    )
    assert admin_refused.status_code == 422
    assert [error["field"] for error in admin_refused.json()["errors"]] == ["birthday"]
    assert (await http.get("/api/v1/me", headers=staff.auth)).json()["user"]["birthday"] == "1990-02-28"

    # The admin corrects it; the other company neither sees nor changes this user.
    corrected = await http.patch(f"/api/v1/users/{staff.id}", json={"birthday": "1991-03-01"}, headers=company.auth)
    assert corrected.json()["birthday"] == "1991-03-01"
    assert (await http.get(f"/api/v1/users/{staff.id}", headers=other.auth)).status_code == 404
    assert (
        await http.patch(f"/api/v1/users/{staff.id}", json={"birthday": "1980-01-01"}, headers=other.auth)
    ).status_code == 404
    others = (await http.get("/api/v1/users", headers=other.auth)).json()["items"]
    assert "1991-03-01" not in [user["birthday"] for user in others]

    # null removes it; every change is in the audit log with before and after.
    cleared = await http.patch("/api/v1/me", json={"birthday": None}, headers=staff.auth)
    assert cleared.json()["birthday"] is None
    log = (
        await http.get("/api/v1/audit", params={"action": "user.updated", "entity_id": staff.id}, headers=company.auth)
    ).json()["items"]
    changes = [entry["changes"]["birthday"] for entry in log if "birthday" in entry["changes"]]
    assert sorted(map(tuple, changes), key=str) == sorted(
        [(None, "1990-02-28"), ("1990-02-28", "1991-03-01"), ("1991-03-01", None)], key=str
    )
    assert (
        await http.get("/api/v1/audit", params={"action": "user.updated", "entity_id": staff.id}, headers=other.auth)
    ).json()["items"] == []
