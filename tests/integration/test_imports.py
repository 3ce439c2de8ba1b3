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
