"""Signup over the API: a company gets its own schema, seeded, atomically, once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from crm.platform.services import Services
from tests.conftest import TenantFactory, signup_body
from tests.support import random_ip


async def _signup(http: httpx.AsyncClient, body: dict[str, Any], ip: str | None = None) -> httpx.Response:
    return await http.post("/api/v1/signup", json=body, headers={"X-Forwarded-For": ip or random_ip()})


async def _tenant_count(services: Services, slug: str) -> int:
    return int(await services.db.pool.fetchval("SELECT count(*) FROM platform.tenants WHERE slug = $1", slug))


async def test_signup_creates_a_seeded_schema_at_the_current_version(
    http: httpx.AsyncClient, services: Services
) -> None:
    other = signup_body(edition="start")
    assert (await _signup(http, other)).status_code == 201
    body = signup_body(edition="realty")
    response = await _signup(http, body)

    assert response.status_code == 201
    assert response.json() == {"tenant": {"slug": body["slug"], "edition": "realty", "status": "active"}}
    tenant = await services.db.pool.fetchrow(
        "SELECT schema_name, schema_version FROM platform.tenants WHERE slug = $1", body["slug"]
    )
    assert tenant["schema_name"].startswith("t_") and body["slug"] not in tenant["schema_name"]
    from crm.platform.migrate import latest_version, tenant_migrations

    assert tenant["schema_version"] == latest_version(tenant_migrations())
    schema = tenant["schema_name"]
    stages = await services.db.pool.fetch(
        f'SELECT s.key FROM "{schema}".pipeline_stages s ORDER BY s.pipeline_id, s.position'
    )
    realty = services.editions["realty"]
    expected = [stage.key for pipeline in realty.defaults.pipelines for stage in pipeline.stages]
    assert [row["key"] for row in stages] == expected
    roles = {row["key"] for row in await services.db.pool.fetch(f'SELECT key FROM "{schema}".roles')}
    assert {"admin", "head_of_sales", "manager", "operator"} <= roles
    admins = await services.db.pool.fetch(f'SELECT email, role, password_hash FROM "{schema}".users')
    assert len(admins) == 1, "the other company's admin must not be in this schema"
    admin = admins[0]
    assert admin["email"] == body["admin_email"] and admin["role"] == "admin"
    assert admin["password_hash"].startswith("$argon2id$")
    assert body["admin_password"] not in admin["password_hash"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "Bad Slug!"),
        ("slug", "api"),
        ("edition", "platinum"),
        ("admin_password", "short"),
        ("admin_password", "aaaaaaaaaaaaaaaa"),
        ("admin_email", "not-an-email"),
        ("timezone", "Mars/Olympus_Mons"),
        ("locale", "de"),
        ("company", ""),
    ],
)
async def test_bad_input_names_the_field_and_creates_nothing(
    http: httpx.AsyncClient, services: Services, field: str, value: str
) -> None:
    body = signup_body(**{field: value})
    response = await _signup(http, body)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert [error["field"] for error in problem["errors"]] == [field]
    assert await _tenant_count(services, body["slug"]) == 0


async def test_missing_and_mistyped_fields_are_a_problem_document(http: httpx.AsyncClient) -> None:
    body = signup_body()
    del body["admin_email"]
    response = await _signup(http, body)
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "admin_email" in response.text


async def test_taken_slug_is_a_conflict_naming_the_slug(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    tenant = await make_tenant()
    response = await _signup(http, signup_body(slug=tenant.slug, admin_email="other@example.org"))

    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "slug", "detail": "is already taken"}]


async def test_the_same_request_retried_concurrently_creates_one_tenant(
    http: httpx.AsyncClient, services: Services
) -> None:
    body = signup_body()
    responses = await asyncio.gather(*(_signup(http, body) for _ in range(4)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409]
    assert await _tenant_count(services, body["slug"]) == 1
    schemas = await services.db.pool.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE nspname = (SELECT schema_name FROM platform.tenants WHERE slug = $1)",
        body["slug"],
    )
    assert schemas == 1


async def test_a_failure_part_way_leaves_no_half_tenant(http: httpx.AsyncClient, services: Services) -> None:
    """The database refuses the last write of provisioning; nothing of the tenant may remain."""
    body = signup_body()
    schemas_before = await services.db.pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
    await services.db.pool.execute(
        f"""
        CREATE FUNCTION platform.refuse_identity() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.email = '{body["admin_email"]}' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_identity BEFORE INSERT ON platform.identities
            FOR EACH ROW EXECUTE FUNCTION platform.refuse_identity();
        """
    )
    try:
        failed = await _signup(http, body)
    finally:
        await services.db.pool.execute(
            "DROP TRIGGER refuse_identity ON platform.identities; DROP FUNCTION platform.refuse_identity();"
        )
    assert failed.status_code == 500
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert await _tenant_count(services, body["slug"]) == 0
    schemas_after = await services.db.pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'")
    assert schemas_after == schemas_before

    retried = await _signup(http, body)
    assert retried.status_code == 201
    assert await _tenant_count(services, body["slug"]) == 1


async def test_signup_is_rate_limited_per_client_address(http: httpx.AsyncClient) -> None:
    ip = random_ip()
    statuses = []
    for _ in range(11):
        response = await _signup(http, signup_body(slug="Invalid!"), ip=ip)
        statuses.append(response.status_code)
    assert statuses[:10] == [422] * 10
    assert statuses[10] == 429
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["code"] == "rate-limited"
    other = await _signup(http, signup_body(slug="Invalid!"), ip=random_ip())
    assert other.status_code == 422
