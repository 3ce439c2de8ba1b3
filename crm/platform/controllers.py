"""Platform endpoints: health, signup, tokens and the caller's own profile."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_503_SERVICE_UNAVAILABLE

from crm.platform.auth import Principal, issue_token, revoke_token
from crm.platform.errors import NotFound
from crm.platform.migrate import (
    latest_version,
    platform_migrations,
    platform_schema_version,
    tenant_migrations,
)
from crm.platform.ratelimit import check_rate_limit
from crm.platform.schemas import (
    EditionSummary,
    MeResponse,
    SignedUpTenant,
    SignupResponse,
    TenantRead,
    TokenRequest,
    TokenResponse,
)
from crm.platform.security import AUTHENTICATED, PUBLIC, client_address, origin_of
from crm.platform.services import services_of
from crm.platform.signup import SignupRequest, provision_tenant
from crm.platform.tables import Tenant
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.users.reads import READ_COLUMNS, user_read
from crm.tenants.users.schemas import ProfileUpdate, UserRead
from crm.tenants.users.services import update_profile
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
                # A newer schema is fine: during a rolling deploy the new release migrates
                # first and the previous one keeps serving (expand/contract).
                if version < expected:
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
    ) -> SignupResponse:
        services = services_of(state)
        await check_rate_limit(
            services.db.pool,
            f"signup:{client_address(request)}",
            limit=services.settings.signup_rate_limit,
            window_seconds=3600,
        )
        tenant = (await provision_tenant(services.db, services.editions, data, origin=origin_of(request))).tenant
        return SignupResponse(tenant=SignedUpTenant(slug=tenant.slug, edition=tenant.edition, status=tenant.status))

    @post(
        "/auth/token",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        operation_id="createToken",
        summary="Exchange company, e-mail and password for a bearer token",
    )
    async def create_token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest], state: State
    ) -> TokenResponse:
        services = services_of(state)
        # Per client address: one source guessing many accounts. Guessing one account from
        # many sources is stopped by the lockout in issue_token.
        await check_rate_limit(
            services.db.pool,
            f"login:{client_address(request)}",
            limit=services.settings.login_rate_limit,
            window_seconds=300,
        )
        token = await issue_token(
            services.db,
            tenant_slug=data.tenant,
            email=data.email,
            password=data.password,
            name=data.name[:100],
            totp_code=data.totp_code,
            secret_key=services.settings.secret_key.reveal(),
            origin=origin_of(request),
        )
        return TokenResponse(access_token=token)

    @delete(
        "/auth/token", opt=AUTHENTICATED, operation_id="revokeToken", summary="Revoke the token used for this request"
    )
    async def revoke(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], state: State
    ) -> None:
        await revoke_token(services_of(state).db, principal, origin=origin_of(request))


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["me"]

    @get("/", opt=AUTHENTICATED, operation_id="getMe", summary="The caller, their company and its edition")
    async def me(self, principal: NamedDependency[Principal], state: State) -> MeResponse:
        services = services_of(state)
        tenant = (
            await Tenant.select(Tenant.name, Tenant.locale, Tenant.timezone)
            .where(Tenant.id == principal.tenant.id)
            .first()
        )
        if tenant is None:
            raise NotFound("The company no longer exists.")
        user = await read_in_tenant(
            principal.tenant,
            User.select(*READ_COLUMNS).where(User.id == principal.user_id).output(load_json=True).first().run,
        )
        if user is None:
            raise NotFound("Your user no longer exists.")
        edition = services.editions[principal.tenant.edition]
        return MeResponse(
            user=user_read(user),
            tenant=TenantRead(
                slug=principal.tenant.slug,
                edition=principal.tenant.edition,
                status=principal.tenant.status,
                **tenant,
            ),
            edition=msgspec.convert(edition.public_summary(), EditionSummary),
        )

    @patch(
        "/",
        opt=AUTHENTICATED,
        operation_id="updateMe",
        summary="Change your name, language, timezone or working hours",
    )
    async def update(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[ProfileUpdate]
    ) -> UserRead:
        changes = {
            field: value for field in data.__struct_fields__ if (value := getattr(data, field)) is not msgspec.UNSET
        }
        async with tenant_scope(principal.tenant):
            await update_profile(principal, changes, origin=origin_of(request))
            row = await User.select(*READ_COLUMNS).where(User.id == principal.user_id).output(load_json=True).first()
        assert row is not None
        return user_read(row)
