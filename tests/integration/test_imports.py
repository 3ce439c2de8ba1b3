"""Importing clients from CSV: detection of columns, validation per row, duplicates,
progress, audit, resumption after a crash, rights and module gating."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import scope_connection, tenant_scope
from crm.platform.timers import run_due
from crm.tenants.audit.services import verify_chain
from tests.conftest import SignedUpTenant, TenantFactory, add_staff

RUSSIAN_EXCEL = (
    "Название;Телефон;E-mail;ИНН;Статус;Теги\r\n"
    'ООО "Ромашка";8 (912) 345-67-89;info@romashka.ru;7701234567;клиент;опт, москва\r\n'
    "Пётр Иванов;+7 903 111-22-33, 8 903 111 22 34;petr@example.ru;;лид;\r\n"
    "Без телефона;не номер;не почта;12;неизвестно;\r\n"
    "Дубль Ромашки;+79123456789;;;;\r\n"
    ";;;;;\r\n"
).encode("cp1251")


async def _upload(http: httpx.AsyncClient, company: SignedUpTenant, content: bytes, **form: str) -> httpx.Response:
    return await http.post(
        "/api/v1/imports", headers=company.auth, files={"file": ("clients.csv", content, "text/csv")}, data=form
    )


async def _finished(http: httpx.AsyncClient, company: SignedUpTenant, import_id: int) -> dict[str, Any]:
    for _ in range(200):
        job: dict[str, Any] = (await http.get(f"/api/v1/imports/{import_id}", headers=company.auth)).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {import_id} did not finish: {job}")


async def test_a_russian_excel_file_is_imported_row_by_row(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()

    preview = await http.post(
        "/api/v1/imports/preview", headers=company.auth, files={"file": ("c.csv", RUSSIAN_EXCEL, "text/csv")}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["mapping"] == {
        "Название": "name",
        "Телефон": "phones",
        "E-mail": "emails",
        "ИНН": "tax_id",
        "Статус": "status",
        "Теги": "tags",
    }
    assert preview.json()["total_rows"] == 4  # the blank row is not a row

    started = await _upload(http, company, RUSSIAN_EXCEL)
    assert started.status_code == 202, started.text
    job = await _finished(http, company, started.json()["id"])
    assert (job["status"], job["total_rows"], job["processed_rows"], job["percent"]) == ("done", 4, 4, 100)
    assert (job["created_rows"], job["skipped_rows"], job["error_rows"]) == (2, 1, 1)
    problems = {(problem["row"], problem["field"]) for problem in job["errors"]}
    # Line 4 (header = line 1) fails on every field it has wrong, all reported; line 5 duplicates line 2.
    assert {(4, "phones"), (4, "emails"), (4, "tax_id"), (4, "status")} <= problems
    assert (5, "phone") in problems

    clients = {c["name"]: c for c in (await http.get("/api/v1/clients", headers=company.auth)).json()["items"]}
    romashka = clients['ООО "Ромашка"']
    assert romashka["kind"] == "company" and romashka["phones"] == ["+79123456789"]
    assert romashka["status"] == "client" and romashka["tax_id"] == "7701234567"
    assert sorted(romashka["tags"]) == ["москва", "опт"]
    assert clients["Пётр Иванов"]["phones"] == ["+79031112233", "+79031112234"]
    assert clients["Пётр Иванов"]["kind"] == "person"
    # The other company got nothing, and cannot read this import.
    assert (await http.get("/api/v1/clients", headers=other.auth)).json()["items"] == []
    assert (await http.get(f"/api/v1/imports/{job['id']}", headers=other.auth)).status_code == 404

    # Every created client is in the audit log as created by the import, and the chain holds.
    log = (
        await http.get("/api/v1/audit", headers=company.auth, params={"action": "client.created", "limit": 200})
    ).json()["items"]
    assert {entry["entity_id"] for entry in log} == {str(romashka["id"]), str(clients["Пётр Иванов"]["id"])}
    assert {entry["actor_kind"] for entry in log} == {"import"}
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        assert (await verify_chain(scope_connection())).intact


async def test_an_interrupted_import_resumes_without_doubles(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Any
) -> None:
    company, other = await make_tenant(), await make_tenant()
    await _finished(http, other, (await _upload(http, other, "name,phone\nСосед,+79000000001\n".encode())).json()["id"])
    lines = ["name,phone"] + [f"Клиент {n},+7 95{n:08d}" for n in range(2500)]
    content = "\n".join(lines).encode()
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None

    started = await _upload(http, company, content)
    import_id = started.json()["id"]
    job = await _finished(http, company, import_id)
    assert job["created_rows"] == 2500

    # Simulate a runner that died after the first batch: rewind the job and its timer as
    # they stood then, with the lease run out, and let a runner claim it again.
    async with tenant_scope(tenant):
        connection = scope_connection()
        kept = await connection.fetch("SELECT id FROM clients ORDER BY id LIMIT 1000")
        await connection.execute("DELETE FROM clients WHERE id > $1", kept[-1]["id"])
        await connection.execute(
            "UPDATE imports SET status = 'running', processed_rows = 1000, created_rows = 1000, finished_at = NULL"
            " WHERE id = $1",
            import_id,
        )
        await connection.execute(
            "UPDATE platform.timers SET state = 'running', lease_until = now() - interval '1 second'"
            " WHERE payload->>'import_id' = $1 AND tenant_id = $2",
            str(import_id),
            tenant.id,
        )
    await run_due(services.db.pool)
    job = await _finished(http, company, import_id)
    assert (job["status"], job["created_rows"], job["processed_rows"]) == ("done", 2500, 2500)
    async with tenant_scope(tenant):
        connection = scope_connection()
        assert await connection.fetchval("SELECT count(*) FROM clients") == 2500
        assert await connection.fetchval("SELECT count(DISTINCT name) FROM clients") == 2500
        # The batches' audit rows (written 1,000 at a time) keep one intact chain.
        assert (await verify_chain(scope_connection())).intact

    # The same file again changes nothing: every row duplicates a client it created.
    again = await _finished(http, company, (await _upload(http, company, content)).json()["id"])
    assert (again["status"], again["created_rows"], again["skipped_rows"], again["error_rows"]) == ("done", 0, 2500, 0)
    async with tenant_scope(tenant):
        assert await scope_connection().fetchval("SELECT count(*) FROM clients") == 2500
    # The neighbour's single client is untouched, and theirs alone.
    assert [c["name"] for c in (await http.get("/api/v1/clients", headers=other.auth)).json()["items"]] == ["Сосед"]


async def test_rights_module_and_bad_files(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    start, business = await make_tenant(edition="start"), await make_tenant()
    gated = await _upload(http, start, RUSSIAN_EXCEL)
    assert gated.status_code == 402
    manager = await add_staff(http, business, "manager", role="manager")
    refused = await http.post(
        "/api/v1/imports", headers=manager.auth, files={"file": ("c.csv", RUSSIAN_EXCEL, "text/csv")}
    )
    assert refused.status_code == 403
    no_name = await _upload(http, business, b"phone\n+79123456789\n")
    assert no_name.status_code == 422
    assert [error["field"] for error in no_name.json()["errors"]] == ["mapping"]
    empty = await _upload(http, business, b"")
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "file"
    bad_mapping = await _upload(http, business, RUSSIAN_EXCEL, mapping='{"Название": "password"}')
    assert bad_mapping.status_code == 422
    assert (await http.get("/api/v1/imports", headers=business.auth)).json()["items"] == []


async def test_export_is_what_you_may_export_and_imports_back(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other, start = await make_tenant(), await make_tenant(), await make_tenant(edition="start")
    await _finished(http, company, (await _upload(http, company, RUSSIAN_EXCEL)).json()["id"])

    exported = await http.get("/api/v1/exports/clients.csv", headers=company.auth)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("ID;Тип;Название;Телефоны")  # the admin's locale is ru
    assert len(lines) == 3 and any('"ООО ""Ромашка"""' in line and "+79123456789" in line for line in lines)

    # Back into this company: every row is a duplicate of itself. Into another company (whose
    # users are others: the responsible column is left out), the same clients.
    back = await _finished(http, company, (await _upload(http, company, exported.content)).json()["id"])
    assert (back["created_rows"], back["skipped_rows"], back["error_rows"]) == (0, 2, 0)
    mapping = (
        '{"Тип": "kind", "Название": "name", "Телефоны": "phones", "E-mail": "emails", "ИНН": "tax_id", "Теги": "tags"}'
    )
    again = await _finished(http, other, (await _upload(http, other, exported.content, mapping=mapping)).json()["id"])
    assert (again["created_rows"], again["error_rows"]) == (2, 0), again["errors"]
    theirs = (await http.get("/api/v1/clients", headers=other.auth)).json()["items"]
    assert sorted(c["name"] for c in theirs) == ['ООО "Ромашка"', "Пётр Иванов"]

    # A manager may not export (no clients.export in the role); the start edition has no exports.
    manager = await add_staff(http, company, "exporter", role="manager")
    assert (await http.get("/api/v1/exports/clients.csv", headers=manager.auth)).status_code == 403
    assert (await http.get("/api/v1/exports/clients.csv", headers=start.auth)).status_code == 402
    log = (await http.get("/api/v1/audit", params={"action": "clients.exported"}, headers=company.auth)).json()
    assert len(log["items"]) == 1


async def _client(http: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    created = await http.post("/api/v1/clients", headers=auth, json={"kind": "company", **fields})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


async def _read_client(http: httpx.AsyncClient, auth: dict[str, str], client_id: int) -> dict[str, Any]:
    found = await http.get(f"/api/v1/clients/{client_id}", headers=auth)
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


async def _client_audit(http: httpx.AsyncClient, company: SignedUpTenant) -> list[dict[str, Any]]:
    entries = []
    for action in ("client.created", "client.updated"):
        params = {"action": action, "limit": 200}
        entries += (await http.get("/api/v1/audit", headers=company.auth, params=params)).json()["items"]
    return entries


async def test_update_merges_lists_overwrites_given_fields_and_repeats_as_a_no_op(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    vector = await _client(
        http,
        company.auth,
        name="ООО Вектор",
        phones=["+79161234567"],
        emails=["sales@vector.ru"],
        tags=["опт"],
        custom={"industry": "retail"},
        addresses=[{"kind": "delivery", "text": "Склад 1"}],
    )
    anna = await _client(http, company.auth, kind="person", name="Анна Смирнова", emails=["anna@example.ru"])
    first = await _client(http, company.auth, name="ООО Первый", phones=["+79035550002"])
    second = await _client(http, company.auth, name="ООО Второй", phones=["+79035550003"])
    # The other company has a client with Vector's phone: it must be neither matched nor changed.
    theirs = await _client(http, other.auth, name="Чужой Вектор", phones=["+79161234567"], tags=["чужой"])

    content = (
        "Название,Телефон,E-mail,Статус,Теги,ИНН,industry\n"
        'ООО Вектор-Плюс,"8 916 123-45-67; +7 916 000-00-01",,клиент,москва,,wholesale\n'
        'Анна Смирнова,,"ANNA@example.ru, anna.s@example.ru",,,,\n'
        "ООО Новый,+7 903 777-00-00,,,,,\n"
        "Двойник,+7 916 000-00-01,,,,,\n"
        'ООО Спорный,"+7 903 555-00-02, +7 903 555-00-03",,,,,\n'
    ).encode()
    job = await _finished(http, company, (await _upload(http, company, content, on_duplicate="update")).json()["id"])
    assert job["on_duplicate"] == "update"
    counts = [job[f"{name}_rows"] for name in ("created", "updated", "unchanged", "skipped", "error")]
    assert counts == [1, 2, 0, 1, 1], job
    problems = {(problem["row"], problem["field"]): problem["detail"] for problem in job["errors"]}
    assert problems == {
        (5, "phone"): "duplicate of line 2 of this file",
        (6, "phones"): f"matches several clients: {first['id']}, {second['id']}",
    }

    # Given fields overwrite; lists merge with the client's entries first; what the file
    # does not have (e-mails, address, source, responsible) stays.
    after = await _read_client(http, company.auth, vector["id"])
    assert after["name"] == "ООО Вектор-Плюс" and after["status"] == "client"
    assert after["phones"] == ["+79161234567", "+79160000001"]
    assert after["tags"] == ["опт", "москва"] and after["custom"] == {"industry": "wholesale"}
    assert after["emails"] == ["sales@vector.ru"] and after["addresses"] == [{"kind": "delivery", "text": "Склад 1"}]
    assert (after["source"], after["responsible_id"]) == (vector["source"], vector["responsible_id"])
    anna_after = await _read_client(http, company.auth, anna["id"])
    assert anna_after["emails"] == ["anna@example.ru", "anna.s@example.ru"] and anna_after["status"] == "lead"
    for untouched in (first, second):
        assert (await _read_client(http, company.auth, untouched["id"]))["name"] == untouched["name"]

    # One client.updated row per changed client, by the import, with only what changed.
    updated = {
        entry["entity_id"]: entry for entry in await _client_audit(http, company) if entry["action"] == "client.updated"
    }
    assert set(updated) == {str(vector["id"]), str(anna["id"])}
    assert set(updated[str(vector["id"])]["changes"]) == {"name", "phones", "tags", "status", "custom"}
    assert updated[str(vector["id"])]["changes"]["tags"] == [["опт"], ["опт", "москва"]]
    assert updated[str(anna["id"])]["changes"] == {
        "emails": [["anna@example.ru"], ["anna@example.ru", "anna.s@example.ru"]]
    }
    assert {entry["actor_kind"] for entry in updated.values()} == {"import"}

    # The same file again changes nothing and writes no audit row about clients.
    before = await _client_audit(http, company)
    again = await _finished(http, company, (await _upload(http, company, content, on_duplicate="update")).json()["id"])
    counts = [again[f"{name}_rows"] for name in ("created", "updated", "unchanged", "skipped", "error")]
    assert counts == [0, 0, 3, 1, 1], again
    assert await _client_audit(http, company) == before
    assert await _read_client(http, company.auth, vector["id"]) == after

    # The other company: its client unchanged, nothing imported, no client updated.
    assert await _read_client(http, other.auth, theirs["id"]) == theirs
    assert [c["name"] for c in (await http.get("/api/v1/clients", headers=other.auth)).json()["items"]] == [
        "Чужой Вектор"
    ]
    assert [e for e in await _client_audit(http, other) if e["action"] == "client.updated"] == []
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        assert (await verify_chain(scope_connection())).intact


async def test_an_own_scope_importer_updates_only_own_clients(
    make_tenant: TenantFactory, http: httpx.AsyncClient
) -> None:
    company, other = await make_tenant(), await make_tenant()
    roles = {role["key"]: role for role in (await http.get("/api/v1/roles", headers=company.auth)).json()["items"]}
    rights = roles["manager"]["rights"] | {"imports": {"read": "own", "create": "own"}}
    patched = await http.patch("/api/v1/roles/manager", json={"rights": rights}, headers=company.auth)
    assert patched.status_code == 200, patched.text
    alice = await add_staff(http, company, "alice", role="manager")
    bob = await add_staff(http, company, "bob", role="manager")
    bobs = await _client(http, bob.auth, name="ООО Бобов", phones=["+79260000001"])
    alices = await _client(http, alice.auth, name="ООО Алисин", phones=["+79260000002"])
    theirs = await _client(http, other.auth, name="ООО Соседи", phones=["+79260000001", "+79260000002"])

    content = "name,phone,tags\nООО Переименован,+7 926 000-00-01,vip\nООО Алисин,+7 926 000-00-02,vip\n".encode()
    started = await http.post(
        "/api/v1/imports",
        headers=alice.auth,
        files={"file": ("c.csv", content, "text/csv")},
        data={"on_duplicate": "update"},
    )
    assert started.status_code == 202, started.text
    job = await _finished(http, company, started.json()["id"])
    assert (job["created_rows"], job["updated_rows"], job["skipped_rows"], job["error_rows"]) == (0, 1, 0, 1)
    # Bob's client is reported without its id (Alice may not read it) and left as it was.
    assert job["errors"] == [{"row": 2, "field": "phones", "detail": "matches a client you may not update"}]
    assert await _read_client(http, bob.auth, bobs["id"]) == bobs
    assert (await _read_client(http, alice.auth, alices["id"]))["tags"] == ["vip"]
    assert await _read_client(http, other.auth, theirs["id"]) == theirs


async def test_an_unknown_duplicate_rule_is_refused(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    for path in ("/api/v1/imports", "/api/v1/imports/preview"):
        refused = await http.post(
            path,
            headers=company.auth,
            files={"file": ("c.csv", RUSSIAN_EXCEL, "text/csv")},
            data={"on_duplicate": "merge"},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"field": "on_duplicate", "detail": "must be one of skip, update, create"}]
    assert (await http.get("/api/v1/imports", headers=company.auth)).json()["items"] == []
    assert (await http.get("/api/v1/clients", headers=other.auth)).json()["items"] == []


async def test_a_resumed_update_import_still_knows_the_rows_before(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Any
) -> None:
    company, other = await make_tenant(), await make_tenant()
    existing = await _client(http, company.auth, name="Старое имя", phones=["+79500000005"])
    neighbour = await _client(http, other.auth, name="Клиент 0 у соседа", phones=["+79500000000"])
    # Line 7 updates the existing client; line 1202, past the first batch, repeats line 2's phone.
    lines = ["name,phone"] + [f"Клиент {n},+7 95{n:08d}" for n in range(1200)] + ["Не Клиент 0,+7 9500000000"]
    content = "\n".join(lines).encode()
    import_id = (await _upload(http, company, content, on_duplicate="update")).json()["id"]
    job = await _finished(http, company, import_id)
    assert (job["created_rows"], job["updated_rows"], job["skipped_rows"], job["error_rows"]) == (1199, 1, 1, 0)

    # As if the runner died after the first batch: the second batch's clients never were.
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        connection = scope_connection()
        await connection.execute("DELETE FROM clients WHERE name ~ '^Клиент 1[0-9]{3}$'")
        await connection.execute(
            "UPDATE imports SET status = 'running', processed_rows = 1000, created_rows = 999, skipped_rows = 0,"
            " errors = '[]', finished_at = NULL WHERE id = $1",
            import_id,
        )
        await connection.execute(
            "UPDATE platform.timers SET state = 'running', lease_until = now() - interval '1 second'"
            " WHERE payload->>'import_id' = $1 AND tenant_id = $2",
            str(import_id),
            tenant.id,
        )
    await run_due(services.db.pool)
    job = await _finished(http, company, import_id)
    assert (job["created_rows"], job["updated_rows"], job["skipped_rows"], job["error_rows"]) == (1199, 1, 1, 0)
    assert job["errors"] == [{"row": 1202, "field": "phone", "detail": "duplicate of line 2 of this file"}]
    async with tenant_scope(tenant):
        connection = scope_connection()
        # Line 1202 did not rename line 2's client (it would have, had the job forgotten line 2).
        assert await connection.fetchval("SELECT count(*) FROM clients WHERE name = 'Клиент 0'") == 1
        assert await connection.fetchval("SELECT count(*) FROM clients") == 1200
        assert await connection.fetchval("SELECT name FROM clients WHERE id = $1", existing["id"]) == "Клиент 5"
        assert (await verify_chain(connection)).intact
    assert await _read_client(http, other.auth, neighbour["id"]) == neighbour
