"""Inviting staff: signed, expiring, single-use links delivered through the mail outbox."""

from __future__ import annotations

import re

import httpx

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import SignedUpTenant, TenantFactory
from tests.support import random_ip


async def _outbox_link(company: SignedUpTenant, to: str) -> tuple[str, str]:
    tenant = await load_tenant(slug=company.slug)
    assert tenant is not None
    async with tenant_scope(tenant):
        row = await scope_connection().fetchrow(
            "SELECT subject, body FROM mail_outbox WHERE to_address = $1 ORDER BY id DESC LIMIT 1", to
        )
    assert row is not None
    link = re.search(r"https?://\S+/invite/(\S+)", row["body"])
    assert link, row["body"]
    return row["subject"], link.group(1)


async def _accept(http: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await http.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": password},
        headers={"X-Forwarded-For": random_ip()},
    )


async def test_invite_accept_and_log_in(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    company, other = await make_tenant(), await make_tenant()
    invited = await http.post(
        "/api/v1/users/invitations",
        json={"email": "Anna@Example.org", "name": "Анна", "role": "manager", "locale": "ru"},
        headers=company.auth,
    )
    assert invited.status_code == 201, invited.text
    subject, token = await _outbox_link(company, "anna@example.org")
    assert subject.startswith("Приглашение")

    # Not yet a working login; the invitation is not valid in another company; a changed
    # link fails its signature.
    login = {"tenant": company.slug, "email": "anna@example.org", "password": "silver birch morning"}
    assert (
        await http.post("/api/v1/auth/token", json=login, headers={"X-Forwarded-For": random_ip()})
    ).status_code == 401
    other_id = (await load_tenant(slug=other.slug)).id  # type: ignore[union-attr]
    forged = other_id + token[12:]
    assert (await _accept(http, forged, "silver birch morning")).status_code == 410
    assert (await _accept(http, token[:-2] + "AA", "silver birch morning")).status_code == 410
    assert (await _accept(http, token, "short")).status_code == 422

    accepted = await _accept(http, token, "silver birch morning")
    assert accepted.status_code == 200 and accepted.json() == {"tenant": company.slug, "email": "anna@example.org"}
    again = await _accept(http, token, "silver birch morning")
    assert again.status_code == 410 and "already been used" in again.json()["detail"]
    response = await http.post("/api/v1/auth/token", json=login, headers={"X-Forwarded-For": random_ip()})
    assert response.status_code == 200
    me = (await http.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})).json()
    assert me["user"]["role"] == "manager" and me["tenant"]["slug"] == company.slug
    actions = [e["action"] for e in (await http.get("/api/v1/audit", headers=company.auth)).json()["items"]]
    assert "user.invited" in actions and "user.invitation_accepted" in actions
    assert {u["email"] for u in (await http.get("/api/v1/users", headers=other.auth)).json()["items"]} == {other.email}


async def test_expired_and_duplicate_invitations(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company = await make_tenant()
    body = {"email": "late@example.org", "name": "Late", "role": "operator"}
    assert (await http.post("/api/v1/users/invitations", json=body, headers=company.auth)).status_code == 201
    duplicate = await http.post("/api/v1/users/invitations", json=body, headers=company.auth)
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "email"
    bad = await http.post(
        "/api/v1/users/invitations", json={"email": "x", "name": "", "role": "emperor"}, headers=company.auth
    )
    assert {error["field"] for error in bad.json()["errors"]} == {"email", "name", "role"}

    _, token = await _outbox_link(company, "late@example.org")
    schema = (await load_tenant(slug=company.slug)).schema  # type: ignore[union-attr]
    await services.db.pool.execute(f"UPDATE \"{schema}\".invitations SET expires_at = now() - interval '1 minute'")
    expired = await _accept(http, token, "a fine long passphrase")
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
