"""The caller's own credentials: API tokens for integrations (named, shown once, revocable,
with the user's rights) and their password."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Origin, Principal, token_hash
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.passwords import hash_password, password_problem, verify_password
from crm.platform.security import AUTHENTICATED, origin_of
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.users.scopes import records_in_scope, require_right
from crm.tenants.users.tables import AccessToken, User

MAX_TOKEN_DAYS = 3650


class TokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    expires_in_days: int | None = None


class TokenRead(msgspec.Struct, kw_only=True):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(msgspec.Struct, kw_only=True):
    id: int
    name: str
    expires_at: datetime | None
    # Shown once: only its SHA-256 is kept.
    token: str


class TokenList(msgspec.Struct, kw_only=True):
    items: list[TokenRead]
    next_cursor: str | None = None


READ_COLUMNS = (
    AccessToken.id,
    AccessToken.name,
    AccessToken.created_at,
    AccessToken.last_used_at,
    AccessToken.expires_at,
    AccessToken.revoked_at,
)


class TokensController(Controller):
    path = "/api/v1/me/tokens"
    tags = ["tokens"]

    @post(
        "/",
        opt=AUTHENTICATED,
        status_code=HTTP_201_CREATED,
        operation_id="createApiToken",
        summary="Create a named API token with your rights (shown once)",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[TokenCreate]
    ) -> TokenCreated:
        name = data.name.strip()
        errors = []
        if not 1 <= len(name) <= 100:
            errors.append(FieldError("name", "must be 1 to 100 characters"))
        if data.expires_in_days is not None and not 1 <= data.expires_in_days <= MAX_TOKEN_DAYS:
            errors.append(FieldError("expires_in_days", f"must be 1 to {MAX_TOKEN_DAYS}"))
        if errors:
            raise InvalidInput("The token request has invalid fields.", errors=errors)
        expires_at = datetime.now(UTC) + timedelta(days=data.expires_in_days) if data.expires_in_days else None
        secret = secrets.token_urlsafe(32)
        async with tenant_scope(principal.tenant):
            rows = await AccessToken.insert(
                AccessToken(user_id=principal.user_id, name=name, token_hash=token_hash(secret), expires_at=expires_at)
            ).returning(AccessToken.id)
            token_id = int(rows[0]["id"])
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "token.created",
                entity="access_token",
                entity_id=token_id,
                changes={"name": (None, name), "expires_at": (None, expires_at), "token_hash": (None, "set")},
            )
        return TokenCreated(id=token_id, name=name, expires_at=expires_at, token=f"crm_{principal.tenant.id}_{secret}")

    @get("/", opt=AUTHENTICATED, operation_id="listApiTokens", summary="Your API tokens (never their secrets)")
    async def list_tokens(self, principal: NamedDependency[Principal]) -> TokenList:
        async def rows() -> list[dict[str, Any]]:
            return await tokens_of(principal, principal.user_id)

        return TokenList(items=msgspec.convert(await read_in_tenant(principal.tenant, rows), list[TokenRead]))

    @delete("/{token_id:int}", opt=AUTHENTICATED, operation_id="revokeApiToken", summary="Revoke one of your tokens")
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        token_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
    ) -> None:
        async with tenant_scope(principal.tenant):
            await revoke_token_of(principal, principal.user_id, token_id, origin=origin_of(request))


async def _covers(principal: Principal, user_id: int) -> None:
    """Users may manage their own tokens; someone else's need the users.update scope over
    that user (403 without the right at all, 404 outside its scope)."""
    if user_id == principal.user_id:
        return
    require_right(principal, "users", "update")
    if not 1 <= user_id <= MAX_ID or not await User.exists().where(
        User.id == user_id, await records_in_scope(principal, "users", "update", User.id)
    ):
        raise NotFound(f"There is no user {user_id} you may change.")


async def tokens_of(principal: Principal, user_id: int) -> list[dict[str, Any]]:
    """The tokens of user ``user_id`` (console sessions included; never their secrets), by id,
    inside the open tenant scope."""
    await _covers(principal, user_id)
    rows: list[dict[str, Any]] = (
        await AccessToken.select(*READ_COLUMNS).where(AccessToken.user_id == user_id).order_by(AccessToken.id)
    )
    return rows


async def revoke_token_of(principal: Principal, user_id: int, token_id: int, *, origin: Origin) -> None:
    """Revoke token ``token_id`` of user ``user_id``: it stops working on its next request."""
    await _covers(principal, user_id)
    revoked = (
        await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)})
        .where(AccessToken.id == token_id, AccessToken.user_id == user_id, AccessToken.revoked_at.is_null())
        .returning(AccessToken.id)
    )
    if not revoked:
        raise NotFound(f"There is no active token {token_id}.")
    await record_audit(
        origin.user(principal),
        "auth.token_revoked",
        entity="access_token",
        entity_id=token_id,
        # Whose token it was: an admin may revoke another user's.
        changes={"revoked": (False, True), "user_id": (user_id, user_id)},
    )


class PasswordChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    current_password: str
    new_password: str


class PasswordController(Controller):
    path = "/api/v1/me/password"
    tags = ["me"]

    @post(
        "/",
        opt=AUTHENTICATED,
        status_code=HTTP_204_NO_CONTENT,
        operation_id="changePassword",
        summary="Change your password; your other tokens are revoked",
    )
    async def change(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[PasswordChange]
    ) -> None:
        async with tenant_scope(principal.tenant):
            row = await User.select(User.password_hash).where(User.id == principal.user_id).first()
        if row is None or not await verify_password(row["password_hash"], data.current_password):
            raise InvalidInput("The current password is wrong.", errors=[FieldError("current_password", "is wrong")])
        weakness = password_problem(data.new_password, email=principal.email, name=principal.name)
        if weakness:
            raise InvalidInput("The new password is too weak.", errors=[FieldError("new_password", weakness)])
        new_hash = await hash_password(data.new_password)
        async with tenant_scope(principal.tenant):
            await User.update({User.password_hash: new_hash}).where(User.id == principal.user_id)
            # Whoever else held a token of this user (a lost laptop) is signed out.
            await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)}).where(
                AccessToken.user_id == principal.user_id,
                AccessToken.id != principal.token_id,
                AccessToken.revoked_at.is_null(),
            )
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "user.password_changed",
                entity="user",
                entity_id=principal.user_id,
                changes={"password_hash": ("set", "set")},
            )
