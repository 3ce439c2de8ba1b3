"""Inviting staff: signed, expiring, single-use links delivered through the mail outbox; resending
one replaces its link."""

from __future__ import annotations

import re

import httpx

from crm.platform.auth import load_tenant
from crm.platform.services import Services
from crm.platform.tenancy import scope_connection, tenant_scope
from tests.conftest import SignedUpTenant, TenantFactory, add_staff
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
    # (A different character for certain: a signature ends in "AA" about once in a thousand.)
    altered = token[:-2] + ("B" if token[-2] != "B" else "C") + token[-1]
    assert (await _accept(http, altered, "silver birch morning")).status_code == 410
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


async def _invite(http: httpx.AsyncClient, company: SignedUpTenant, email: str) -> int:
    body = {"email": email, "name": "Invitee", "role": "operator"}
    invited = await http.post("/api/v1/users/invitations", json=body, headers=company.auth)
    assert invited.status_code == 201, invited.text
    user_id: int = invited.json()["user_id"]
    return user_id


async def test_resend_replaces_the_link_until_the_invitation_is_accepted(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    company, other = await make_tenant(), await make_tenant()
    operator = await add_staff(http, company, "operator")
    anna = await _invite(http, company, "anna@example.org")
    _, first = await _outbox_link(company, "anna@example.org")
    resend = f"/api/v1/users/{anna}/invitation/resend"

    # Only with users.create, and only within the company: the other one has no such user.
    assert (await http.post(resend, headers=operator.auth)).status_code == 403
    assert (await http.post(resend, headers=other.auth)).status_code == 404
    assert (await http.post("/api/v1/users/999999/invitation/resend", headers=company.auth)).status_code == 404

    again = await http.post(resend, headers=company.auth)
    assert again.status_code == 201, again.text
    assert again.json()["user_id"] == anna and again.json()["email"] == "anna@example.org"
    _, second = await _outbox_link(company, "anna@example.org")
    assert second != first
    old = await _accept(http, first, "silver birch morning")
    assert old.status_code == 410  # the earlier link stopped working

    # An expired invitation can be resent too; the new link is the one that works.
    schema = (await load_tenant(slug=company.slug)).schema  # type: ignore[union-attr]
    await services.db.pool.execute(f"UPDATE \"{schema}\".invitations SET expires_at = now() - interval '1 minute'")
    assert (await _accept(http, second, "silver birch morning")).status_code == 410
    assert (await http.post(resend, headers=company.auth)).status_code == 201
    _, third = await _outbox_link(company, "anna@example.org")
    assert (await _accept(http, third, "silver birch morning")).status_code == 200

    # Accepted (or never invited, like the operator): nothing to resend.
    joined = await http.post(resend, headers=company.auth)
    assert joined.status_code == 409 and joined.json()["errors"][0]["field"] == "user_id"
    never = await http.post(f"/api/v1/users/{operator.id}/invitation/resend", headers=company.auth)
    assert never.status_code == 409

    audit = (await http.get("/api/v1/audit", headers=company.auth)).json()["items"]
    assert [e["action"] for e in audit].count("user.invitation_resent") == 2
    assert "user.invitation_resent" not in str((await http.get("/api/v1/audit", headers=other.auth)).json())


async def test_resending_an_expired_invitation_needs_a_free_seat(
    make_tenant: TenantFactory, http: httpx.AsyncClient, services: Services
) -> None:
    small, other = await make_tenant(edition="start"), await make_tenant(edition="start")
    await add_staff(http, small, "first")
    late = await _invite(http, small, "late@example.org")  # three of three seats
    schema = (await load_tenant(slug=small.slug)).schema  # type: ignore[union-attr]
    await services.db.pool.execute(f"UPDATE \"{schema}\".invitations SET expires_at = now() - interval '1 minute'")
    await _invite(http, small, "next@example.org")  # the expired invitation's seat went to someone else

    full = await http.post(f"/api/v1/users/{late}/invitation/resend", headers=small.auth)
    assert full.status_code == 402, full.text
    # A live invitation already holds its seat: resending it needs none.
    other_invitee = await _invite(http, other, "late@example.org")
    await add_staff(http, other, "first")
    assert (await http.post(f"/api/v1/users/{other_invitee}/invitation/resend", headers=other.auth)).status_code == 201
