"""Platform endpoints: health, signup, tokens and the caller's own profile."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_503_SERVICE_UNAVAILABLE

from crm.platform.auth import Principal, issue_token, revoke_token
from crm.platform.migrate import (
    latest_version,
    platform_migrations,
    platform_schema_version,
    tenant_migrations,
)
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC
from crm.platform.services import services_of
from crm.platform.signup import SignupRequest, provision_tenant
from crm.platform.tables import Tenant
from crm.platform.tenancy import read_in_tenant
from crm.tenants.users.tables import User


class HealthController(Controller):
    tags = ["health"]

    @get("/health", opt=PUBLIC, operation_id="health", summary="The process is up")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", opt=PUBLIC, operation_id="ready", summary="The database is reachable and migrated")
    async def ready(self, state: State) -> Response[dict[str, Any]]:
        services = services_of(state)
        reasons: list[str] = []
        body: dict[str, Any] = {}
        try:
            async with services.db.pool.acquire(timeout=2) as connection:
                version = await platform_schema_version(connection)
                expected = latest_version(platform_migrations())
                body["platform_schema"] = {"version": version, "expected": expected}
                if version != expected:
                    reasons.append(f"platform schema is at version {version}, the code expects {expected}")
                else:
                    target = latest_version(tenant_migrations())
                    # Tenants still migrating do not fail readiness: a rolling migration
                    # must not take the service out of rotation.
                    body["tenants_behind"] = await connection.fetchval(
                        "SELECT count(*) FROM platform.tenants WHERE schema_version < $1 AND status <> 'deleted'",
                        target,
                    )
                    body["tenant_schema_version"] = target
        except Exception as exc:  # any failure to reach the database means "not ready"
            reasons.append(f"database unreachable: {type(exc).__name__}")
        body["status"] = "not ready" if reasons else "ready"
        if reasons:
            body["reasons"] = reasons
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if reasons else HTTP_200_OK)


class TokenRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tenant: str
    email: str
    password: str
    name: str = "api"


class AuthController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post(
        "/signup",
        opt=PUBLIC,
        status_code=HTTP_201_CREATED,
        operation_id="signup",
        summary="Sign a company up for an edition; creates its tenant",
    )
    async def signup(
        self, request: Request[Any, Any, Any], data: JSONBody[SignupRequest], state: State
    ) -> dict[str, Any]:
        services = services_of(state)
        await check_rate_limit(
            services.db.pool,
            f"signup:{_client_address(request)}",
            limit=services.settings.signup_rate_limit,
            window_seconds=3600,
        )
        provisioned = await provision_tenant(services.db, services.editions, data)
        tenant = provisioned.tenant
        return {"tenant": {"slug": tenant.slug, "edition": tenant.edition, "status": tenant.status}}

    @post(
        "/auth/token",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        operation_id="createToken",
        summary="Exchange company, e-mail and password for a bearer token",
    )
    async def create_token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest], state: State
    ) -> dict[str, str]:
        services = services_of(state)
        await check_rate_limit(
            services.db.pool,
            f"login:{_client_address(request)}",
            limit=services.settings.login_rate_limit,
            window_seconds=300,
        )
        token = await issue_token(
            services.db,
            tenant_slug=data.tenant,
            email=data.email,
            password=data.password,
            name=data.name[:100],
        )
        return {"access_token": token, "token_type": "bearer"}

    @delete("/auth/token", operation_id="revokeToken", summary="Revoke the token used for this request")
    async def revoke(self, principal: NamedDependency[Principal], state: State) -> None:
        await revoke_token(services_of(state).db, principal)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["me"]

    @get("/", operation_id="getMe", summary="The caller, their company and its edition")
    async def me(self, principal: NamedDependency[Principal], state: State) -> dict[str, Any]:
        services = services_of(state)
        tenant = (
            await Tenant.select(Tenant.name, Tenant.locale, Tenant.timezone)
            .where(Tenant.id == principal.tenant.id)
            .first()
        )
        user = await read_in_tenant(
            principal.tenant,
            services.db.engine,
            User.select(User.id, User.email, User.name, User.locale, User.timezone, User.role, User.created_at)
            .where(User.id == principal.user_id)
            .first()
            .run,
        )
        edition = services.editions[principal.tenant.edition]
        return {
            "user": user,
            "tenant": {
                "slug": principal.tenant.slug,
                "name": tenant["name"] if tenant else "",
                "edition": principal.tenant.edition,
                "status": principal.tenant.status,
                "locale": tenant["locale"] if tenant else "en",
                "timezone": tenant["timezone"] if tenant else "UTC",
            },
            "edition": edition.public_summary(),
        }


def _client_address(request: Request[Any, Any, Any]) -> str:
    # Behind a proxy, uvicorn's --proxy-headers puts the real address here.
    return request.client.host if request.client else "unknown"
