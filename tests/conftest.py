"""Fixtures: one fresh database per test run on a real PostgreSQL server, the app over
real HTTP, and fresh tenants signed up through the API for each test."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm.platform.app import create_app
from crm.platform.migrate import migrate_platform
from crm.platform.services import Services, open_services
from crm.settings import Settings
from tests.support import (
    create_database,
    drop_database,
    make_settings,
    random_ip,
    serve,
    unique,
    with_database,
)


@pytest.fixture(scope="session")
def server_url() -> str:
    """The PostgreSQL server: ``CRM_DATABASE_URL`` (CI), else the embedded one.

    The embedded server lives in one folder under the system temp dir (not pytest's
    private, mode-0700 tmp dirs, which its unprivileged server user cannot enter) and is
    reused by later runs; each run still gets a database of its own."""
    given = os.environ.get("CRM_DATABASE_URL")
    if given:
        return given
    from crm.platform.embedded import start_embedded_postgres

    return start_embedded_postgres(Path(tempfile.gettempdir()) / "relay-crm-test-pg18")


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A database of this run's own, dropped afterwards: runs never see each other's data."""
    name = f"crm_test_{secrets.token_hex(6)}"
    await create_database(server_url, name)
    url = with_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


@pytest.fixture(scope="session")
async def services(settings: Settings, database_url: str) -> AsyncIterator[Services]:
    """Database and editions in the test's event loop, platform schema migrated."""
    services = await open_services(_settings_with_url(settings, database_url), pool_max=6)
    await migrate_platform(services.db.pool)
    try:
        yield services
    finally:
        await services.db.close()


def _settings_with_url(settings: Settings, url: str) -> Settings:
    return replace(settings, database=replace(settings.database, url=url))


@pytest.fixture(scope="session")
async def base_url(services: Services, settings: Settings) -> AsyncIterator[str]:
    """The app served by uvicorn on a loopback port."""
    async with serve(create_app(settings, services=services)) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


@dataclass
class SignedUpTenant:
    slug: str
    edition: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


TenantFactory = Callable[..., Awaitable[SignedUpTenant]]


def signup_body(**overrides: Any) -> dict[str, Any]:
    slug = unique("acme")
    body = {
        "company": "Acme Trading",
        "slug": slug,
        "edition": "business",
        "admin_email": f"owner@{slug}.example",
        "admin_password": "correct horse battery",
        "admin_name": "Olga Petrova",
        "locale": "ru",
        "timezone": "Europe/Moscow",
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_tenant(http: httpx.AsyncClient) -> TenantFactory:
    """Sign a fresh company up over the API and log its admin in."""

    async def make(**overrides: Any) -> SignedUpTenant:
        body = signup_body(**overrides)
        response = await http.post("/api/v1/signup", json=body, headers={"X-Forwarded-For": random_ip()})
        assert response.status_code == 201, response.text
        token = await http.post(
            "/api/v1/auth/token",
            json={
                "tenant": body["slug"],
                "email": body["admin_email"],
                "password": body["admin_password"],
            },
            headers={"X-Forwarded-For": random_ip()},
        )
        assert token.status_code == 200, token.text
        return SignedUpTenant(
            body["slug"],
            body["edition"],
            body["admin_email"],
            body["admin_password"],
            token.json()["access_token"],
        )

    return make


STAFF_PASSWORD = "staff password 1"


async def login(http: httpx.AsyncClient, tenant: str, email: str, password: str, **extra: Any) -> httpx.Response:
    """POST /api/v1/auth/token from a fresh client address (the per-address limit stays out of the way)."""
    return await http.post(
        "/api/v1/auth/token",
        json={"tenant": tenant, "email": email, "password": password, **extra},
        headers={"X-Forwarded-For": random_ip()},
    )


@dataclass
class Staff:
    id: int
    email: str
    auth: dict[str, str]


async def add_staff(http: httpx.AsyncClient, company: SignedUpTenant, name: str, *, role: str = "operator") -> Staff:
    """A user of ``company`` with ``role`` (written directly), logged in over the API."""
    from crm.platform.auth import load_tenant
    from crm.platform.passwords import hash_password
    from crm.platform.tenancy import tenant_scope
    from crm.tenants.users.tables import User

    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    email = f"{name}@{company.slug}.example"
    async with tenant_scope(tenant):
        rows = await User.insert(
            User(email=email, name=name.title(), password_hash=await hash_password(STAFF_PASSWORD), role=role)
        ).returning(User.id)
    response = await login(http, company.slug, email, STAFF_PASSWORD)
    assert response.status_code == 200, response.text
    return Staff(int(rows[0]["id"]), email, {"Authorization": f"Bearer {response.json()['access_token']}"})
