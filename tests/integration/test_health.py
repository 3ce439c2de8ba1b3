"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

import secrets

import httpx

from crm.platform.app import create_app
from crm.platform.db import connect_database
from crm.platform.services import Services
from crm.settings import Settings
from tests.support import create_database, drop_database, serve, with_database


async def test_health_and_ready(http: httpx.AsyncClient, services: Services) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    await services.db.pool.execute(
        "INSERT INTO platform.tenants (id, slug, name, schema_name, edition, schema_version)"
        " VALUES ('behind000001', 'behind-tenant', 'Behind', 't_behind000001', 'start', 0)"
    )
    try:
        response = await http.get("/ready")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        # A tenant still migrating is reported but does not take the service out of rotation.
        assert body["tenants_behind"] >= 1
    finally:
        await services.db.pool.execute("DELETE FROM platform.tenants WHERE id = 'behind000001'")


async def test_ready_is_503_with_reasons_on_an_unmigrated_database(
    server_url: str, settings: Settings, services: Services
) -> None:
    """A database the platform migrations never ran on: the app must say it is not ready."""
    name = f"crm_test_empty_{secrets.token_hex(4)}"
    await create_database(server_url, name)
    try:
        # Not bound: the table classes stay with the test database's engine.
        empty = await connect_database(with_database(server_url, name), pool_min=1, pool_max=2, bind=False)
        try:
            app = create_app(settings, services=Services(settings=settings, db=empty, editions=services.editions))
            async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
                response = await client.get("/ready")
        finally:
            await empty.close()
    finally:
        await drop_database(server_url, name)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert "platform schema is at version 0" in body["reasons"][0]


async def test_openapi_lists_operations_with_ids_and_tags(http: httpx.AsyncClient) -> None:
    document = (await http.get("/schema/openapi.json")).json()
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {"signup", "createToken", "getMe", "listUsers", "getUser", "health", "ready"} <= set(operations)
    assert all(operation.get("tags") for operation in operations.values())


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    echoed = await http.get("/health", headers={"X-Request-ID": "req-abcdef123"})
    assert echoed.headers["x-request-id"] == "req-abcdef123"
    generated = await http.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 16


async def test_a_newer_platform_schema_keeps_the_service_ready(http: httpx.AsyncClient, services: Services) -> None:
    """During a rolling deploy the new release migrates first; the old one must stay in rotation."""
    await services.db.pool.execute(
        "INSERT INTO platform.schema_migrations (version, name) VALUES (999, 'from-the-future')"
    )
    try:
        response = await http.get("/ready")
    finally:
        await services.db.pool.execute("DELETE FROM platform.schema_migrations WHERE version = 999")
    assert response.status_code == 200
    assert response.json()["platform_schema"]["version"] == 999
