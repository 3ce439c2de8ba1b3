"""Sentry: errors arrive tagged with tenant and edition, with no personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sentry_sdk
from litestar import post
from litestar.params import JSONBody
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from crm.platform.app import create_app
from crm.platform.observability import init_sentry
from crm.platform.security import AUTHENTICATED
from crm.platform.services import Services
from crm.settings import Settings
from tests.conftest import TenantFactory
from tests.support import make_settings, serve


class CapturingTransport(Transport):
    """Keeps every envelope the SDK would send, serialised exactly as it would go out."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.payloads: list[str] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.payloads.append(envelope.serialize().decode())

    def events(self) -> list[dict[str, Any]]:
        found = []
        for payload in self.payloads:
            for line in payload.splitlines():
                if line.startswith("{") and '"exception"' in line:
                    found.append(json.loads(line))
        return found


@pytest.fixture
def transport(data_dir: Any) -> Iterator[CapturingTransport]:
    capturing = CapturingTransport()
    settings = make_settings(data_dir, CRM_SENTRY_DSN="http://public@127.0.0.1:9/1")
    assert init_sentry(settings, transport=capturing)
    try:
        yield capturing
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: the SDK is a no-op for the rest of the run


@post("/api/v1/test-failure", opt=AUTHENTICATED, operation_id="testFailure", tags=["test"])
async def failing_route(data: JSONBody[dict[str, Any]]) -> None:
    raise RuntimeError(f"could not notify {data['email']} about the deal")


async def test_errors_reach_sentry_tagged_and_scrubbed(
    transport: CapturingTransport, make_tenant: TenantFactory, settings: Settings, services: Services
) -> None:
    bystander, tenant = await make_tenant(), await make_tenant(edition="realty")
    app = create_app(settings, services=services)
    app.register(failing_route)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        # Client errors are not bugs and must not reach Sentry.
        assert (await client.get("/api/v1/me")).status_code == 401
        bad_signup = await client.post("/api/v1/signup", json={"slug": "x"})
        assert bad_signup.status_code in (400, 422)
        response = await client.post(
            "/api/v1/test-failure",
            json={"email": "ivan.petrov@client.example", "phone": "+79123456789"},
            headers={**tenant.auth, "Cookie": "session=secret-cookie"},
        )
    assert response.status_code == 500
    assert "ivan.petrov" not in response.text
    sentry_sdk.flush()

    events = transport.events()
    assert len(events) == 1
    event = events[0]
    assert event["tags"]["tenant"] == tenant.slug
    assert event["tags"]["edition"] == "realty"
    raw = "\n".join(transport.payloads)
    assert bystander.slug not in raw
    for secret in ("ivan.petrov@client.example", "+79123456789", tenant.token, "secret-cookie", tenant.email):
        assert secret not in raw
    assert "could not notify [Filtered] about the deal" in raw
