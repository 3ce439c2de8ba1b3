"""Forgotten passwords: a mailed single-use link; nothing learned about unknown accounts."""

from __future__ import annotations

import re

import httpx

from crm.platform.auth import load_tenant
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import SignedUpTenant, TenantFactory
from tests.support import random_ip


async def _mails(company: SignedUpTenant, kind: str) -> list[str]:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        rows = await scope_connection().fetch("SELECT body FROM mail_outbox WHERE kind = $1 ORDER BY id", kind)
    return [row["body"] for row in rows]


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, str]) -> httpx.Response:
    return await http.post(path, json=body, headers={"X-Forwarded-For": random_ip()})


async def test_reset_by_mailed_link(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    unknown = await _post(http, "/api/v1/auth/password-reset", {"tenant": company.slug, "email": "nobody@example.org"})
    known = await _post(http, "/api/v1/auth/password-reset", {"tenant": company.slug, "email": company.email})
    assert unknown.status_code == known.status_code == 202 and unknown.content == known.content
    mails = await _mails(company, "password_reset")
    assert len(mails) == 1 and "Задайте новый пароль" in mails[0]  # the admin's locale is ru
    assert await _mails(other, "password_reset") == []
    token = re.search(r"/reset/(\S+)", mails[0]).group(1)  # type: ignore[union-attr]

    weak = await _post(http, "/api/v1/auth/password-reset/confirm", {"token": token, "password": "short"})
    assert weak.status_code == 422
    done = await _post(http, "/api/v1/auth/password-reset/confirm", {"token": token, "password": "reset to this one"})
    assert done.status_code == 204
    again = await _post(http, "/api/v1/auth/password-reset/confirm", {"token": token, "password": "and once more now"})
    assert again.status_code == 410
    assert (await http.get("/api/v1/me", headers=company.auth)).status_code == 401  # old tokens revoked
    login = {"tenant": company.slug, "email": company.email}
    assert (await _post(http, "/api/v1/auth/token", {**login, "password": "reset to this one"})).status_code == 200
    assert (await _post(http, "/api/v1/auth/token", {**login, "password": company.password})).status_code == 401
    assert (await http.get("/api/v1/me", headers=other.auth)).status_code == 200  # the other company untouched


async def test_altered_links_are_refused(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company = await make_tenant()
    await _post(http, "/api/v1/auth/password-reset", {"tenant": company.slug, "email": company.email})
    token = re.search(r"/reset/(\S+)", (await _mails(company, "password_reset"))[0]).group(1)  # type: ignore[union-attr]
    for altered in (token[:-1] + ("A" if token[-1] != "A" else "B"), "nonsense", token.replace(".", ".1", 1)):
        response = await _post(http, "/api/v1/auth/password-reset/confirm", {"token": altered, "password": "x" * 12})
        assert response.status_code == 410
