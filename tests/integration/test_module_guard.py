"""A module outside the tenant's edition answers 402 with a problem document."""

from __future__ import annotations

import httpx
from litestar import get

from crm.platform.app import create_app
from crm.platform.security import AUTHENTICATED, requires_module
from crm.platform.services import Services
from crm.settings import Settings
from tests.conftest import TenantFactory
from tests.support import serve


@get(
    "/api/v1/mailings-probe",
    guards=[requires_module("mailings")],
    opt=AUTHENTICATED,
    operation_id="mailingsProbe",
    tags=["test"],
)
async def mailings_probe() -> dict[str, str]:
    return {"mailings": "available"}


async def test_module_guard_by_edition(make_tenant: TenantFactory, settings: Settings, services: Services) -> None:
    start, business = await make_tenant(edition="start"), await make_tenant(edition="business")
    app = create_app(settings, services=services)
    app.register(mailings_probe)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        refused = await client.get("/api/v1/mailings-probe", headers=start.auth)
        allowed = await client.get("/api/v1/mailings-probe", headers=business.auth)
        anonymous = await client.get("/api/v1/mailings-probe")

    assert refused.status_code == 402
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["module"] == "mailings" and problem["edition"] == "start"
    assert problem["available_in"] == ["business", "enterprise", "realty"]
    assert "business" in problem["detail"]
    assert allowed.status_code == 200 and allowed.json() == {"mailings": "available"}
    assert anonymous.status_code == 401
