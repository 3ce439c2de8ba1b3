"""The audit log: every change on record, append-only, hash-chained, per company."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from crm.platform.auth import load_tenant
from crm.platform.passwords import hash_password
from crm.platform.services import Services
from crm.platform.tenancy import TenantRef, scope_connection, tenant_scope
from crm.tenants.audit.services import verify_chain
from crm.tenants.users.tables import User
from tests.conftest import SignedUpTenant, TenantFactory
from tests.support import env_for_cli, random_ip


async def _tenant(signed_up: SignedUpTenant) -> TenantRef:
    tenant = await load_tenant(slug=signed_up.slug)
    assert tenant is not None
    return tenant


async def _audit(http: httpx.AsyncClient, tenant: SignedUpTenant, **params: str) -> list[dict[str, object]]:
    response = await http.get("/api/v1/audit", headers=tenant.auth, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def _verify(database_url: str, data_dir: Path, slug: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm", "audit", "verify", slug],
        env=env_for_cli(database_url, data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_signup_and_logins_are_on_record_per_company(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    first, second = await make_tenant(), await make_tenant()
    failed = await http.post(
        "/api/v1/auth/token",
        json={"tenant": first.slug, "email": first.email, "password": "not the password"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert failed.status_code == 401

    entries = await _audit(http, first)
    actions = [entry["action"] for entry in entries]
    # Newest first: the failed login, the fixture's login, the signup's two rows.
    assert actions == ["auth.login_failed", "auth.login", "user.created", "tenant.created"]
    assert entries[0]["changes"] == {"reason": [None, "wrong e-mail or password"]}
    assert entries[0]["client_address"] == "203.0.113.9" and entries[0]["actor_label"] == first.email
    assert entries[1]["actor_kind"] == "user" and entries[1]["channel"] == "api"
    assert entries[2]["changes"]["password_hash"] == ["[redacted]", "[redacted]"]  # type: ignore[index]
    # The other company's log holds only its own rows.
    assert all(entry["actor_label"] != first.email for entry in await _audit(http, second))
    only_logins = await _audit(http, first, action="auth.login")
    assert [entry["action"] for entry in only_logins] == ["auth.login"]


async def test_secrets_never_enter_the_log(make_tenant: TenantFactory, services: Services) -> None:
    signed_up = await make_tenant()
    async with tenant_scope(await _tenant(signed_up)):
        raw = await scope_connection().fetch("SELECT row_to_json(a)::text AS row FROM audit_log a")
    dump = "\n".join(row["row"] for row in raw)
    assert signed_up.password not in dump
    assert signed_up.token.split("_", 2)[2] not in dump
    assert "$argon2" not in dump


async def test_the_log_is_append_only(make_tenant: TenantFactory) -> None:
    async with tenant_scope(await _tenant(await make_tenant())):
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with scope_connection().transaction():  # a savepoint: the scope goes on
                    await scope_connection().execute(statement)


async def test_verify_finds_a_changed_row_and_a_cut_tail(
    make_tenant: TenantFactory, services: Services, database_url: str, data_dir: Path
) -> None:
    victim, bystander = await make_tenant(), await make_tenant()
    intact = _verify(database_url, data_dir, victim.slug)
    assert intact.returncode == 0, intact.stderr
    assert "intact (3 rows)" in intact.stdout
    schema = (await _tenant(victim)).schema
    tampered_id = await services.db.pool.fetchval(
        f"SELECT id FROM \"{schema}\".audit_log WHERE action = 'user.created'"
    )
    # As a superuser would: switch the guard off, rewrite history, switch it back on.
    await services.db.pool.execute(
        f'ALTER TABLE "{schema}".audit_log DISABLE TRIGGER audit_log_append_only;'
        f""" UPDATE "{schema}".audit_log SET changes = '{{"role": [null, "manager"]}}' WHERE id = {tampered_id};"""
        f' ALTER TABLE "{schema}".audit_log ENABLE TRIGGER audit_log_append_only'
    )
    broken = _verify(database_url, data_dir, victim.slug)
    assert broken.returncode == 1
    assert f"broken at row {tampered_id}" in broken.stderr and "changed" in broken.stderr
    assert _verify(database_url, data_dir, bystander.slug).returncode == 0

    other_schema = (await _tenant(bystander)).schema
    await services.db.pool.execute(
        f'ALTER TABLE "{other_schema}".audit_log DISABLE TRIGGER audit_log_append_only;'
        f' DELETE FROM "{other_schema}".audit_log WHERE id = (SELECT max(id) FROM "{other_schema}".audit_log);'
        f' ALTER TABLE "{other_schema}".audit_log ENABLE TRIGGER audit_log_append_only'
    )
    cut = _verify(database_url, data_dir, bystander.slug)
    assert cut.returncode == 1 and "end of the chain" in cut.stderr


async def test_parallel_logins_keep_one_intact_chain(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    signed_up, other = await make_tenant(), await make_tenant()

    async def login(tenant: SignedUpTenant) -> int:
        response = await http.post(
            "/api/v1/auth/token",
            json={"tenant": tenant.slug, "email": tenant.email, "password": tenant.password},
            headers={"X-Forwarded-For": random_ip()},
        )
        return response.status_code

    statuses = await asyncio.gather(*(login(t) for t in [signed_up, other] * 5))
    assert statuses == [200] * 10
    for tenant in (signed_up, other):
        async with tenant_scope(await _tenant(tenant)):
            report = await verify_chain(scope_connection())
        assert report.intact and report.rows == 2 + 1 + 5  # signup, fixture login, 5 logins


async def test_only_admins_read_the_log(make_tenant: TenantFactory, http: httpx.AsyncClient) -> None:
    signed_up = await make_tenant()
    async with tenant_scope(await _tenant(signed_up)):
        await User.insert(
            User(
                email="manager@example.org",
                name="Manager",
                password_hash=await hash_password("manager password 1"),
                role="manager",
            )
        )
    token = await http.post(
        "/api/v1/auth/token",
        json={"tenant": signed_up.slug, "email": "manager@example.org", "password": "manager password 1"},
        headers={"X-Forwarded-For": random_ip()},
    )
    response = await http.get("/api/v1/audit", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_awkward_values_keep_the_chain_intact(make_tenant: TenantFactory) -> None:
    """Floats jsonb prints differently, Cyrillic, nesting: the chain must still verify."""
    from crm.tenants.audit.services import Actor, record_audit

    tenant = await _tenant(await make_tenant())
    actor = Actor(kind="system", label="test", channel="cli")
    async with tenant_scope(tenant):
        await record_audit(
            actor,
            "deal.updated",
            entity="deal",
            entity_id=7,
            changes={
                "amount": (1e16, 1.5e-7),
                "title": ("Сделка «Север»", 'quote " and \\ slash'),
                "tags": (["a"], {"nested": [1, None, True]}),
            },
        )
        report = await verify_chain(scope_connection())
    assert report.intact and report.rows == 4
