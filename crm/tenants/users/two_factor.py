"""Optional two-factor login with a TOTP authenticator app (RFC 6238, via pyotp).

A user turns it on in two steps — ``POST /api/v1/me/two-factor`` (password again) hands
out the secret and an ``otpauth://`` URI for the app's QR scanner, ``…/confirm`` with a
first code switches it on — and off with password plus code. An admin who may update the
user can reset it (a lost phone). Login then asks for ``totp_code`` besides the password.
Each code works once: the last accepted time step is stored and only later steps pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import pyotp
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.passwords import verify_password
from crm.platform.secretbox import seal
from crm.platform.security import AUTHENTICATED, origin_of, permission
from crm.platform.services import services_of
from crm.platform.tenancy import tenant_scope
from crm.platform.totp import ISSUER, PURPOSE, STEP_SECONDS, login_code_step, spend_step
from crm.tenants.audit.services import record_audit
from crm.tenants.users.scopes import require_right
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User


class TwoFactorStatus(msgspec.Struct, kw_only=True):
    enabled: bool
    # Set up but not confirmed with a first code yet.
    pending: bool


class TwoFactorSetup(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    password: str


class TwoFactorSecret(msgspec.Struct, kw_only=True):
    # Shown once; the app stores it. Type it in, or scan the otpauth URI as a QR code.
    secret: str
    otpauth_uri: str


class TwoFactorCode(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: str


class TwoFactorDisable(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    password: str
    code: str


_COLUMNS = (User.password_hash, User.totp_secret, User.totp_enabled_at, User.totp_last_step)


async def _me(principal: Principal) -> dict[str, Any]:
    row = await User.select(*_COLUMNS).where(User.id == principal.user_id).first()
    if row is None:
        raise NotFound("Your user no longer exists.")
    return row


class TwoFactorController(Controller):
    path = "/api/v1/me/two-factor"
    tags = ["me"]

    @get("/", opt=AUTHENTICATED, operation_id="getTwoFactor", summary="Whether two-factor login is on for you")
    async def status(self, principal: NamedDependency[Principal]) -> TwoFactorStatus:
        async with tenant_scope(principal.tenant):
            me = await _me(principal)
        enabled = me["totp_enabled_at"] is not None
        return TwoFactorStatus(enabled=enabled, pending=not enabled and me["totp_secret"] is not None)

    @post(
        "/",
        opt=AUTHENTICATED,
        status_code=HTTP_201_CREATED,
        operation_id="setUpTwoFactor",
        summary="Start turning two-factor login on: a new secret for your authenticator app",
    )
    async def set_up(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[TwoFactorSetup],
        state: State,
    ) -> TwoFactorSecret:
        async with tenant_scope(principal.tenant):
            me = await _me(principal)
        if me["totp_enabled_at"] is not None:
            raise Conflict("Two-factor login is already on; turn it off first to move to a new app.")
        if not await verify_password(me["password_hash"], data.password):
            raise InvalidInput("The password is wrong.", errors=[FieldError("password", "is wrong")])
        secret = pyotp.random_base32()
        sealed = seal(services_of(state).settings.secret_key.reveal(), PURPOSE, secret)
        async with tenant_scope(principal.tenant):
            await User.update({User.totp_secret: sealed, User.totp_last_step: None}).where(User.id == principal.user_id)
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "user.two_factor_setup_started",
                entity="user",
                entity_id=principal.user_id,
            )
        uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
            name=principal.email, issuer_name=f"{ISSUER} ({principal.tenant.slug})"
        )
        return TwoFactorSecret(secret=secret, otpauth_uri=uri)

    @post(
        "/confirm",
        opt=AUTHENTICATED,
        status_code=HTTP_204_NO_CONTENT,
        operation_id="confirmTwoFactor",
        summary="Turn two-factor login on with a first code from the app",
    )
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[TwoFactorCode],
        state: State,
    ) -> None:
        key = services_of(state).settings.secret_key.reveal()
        async with tenant_scope(principal.tenant):
            me = await _me(principal)
            if me["totp_enabled_at"] is not None:
                raise Conflict("Two-factor login is already on.")
            if me["totp_secret"] is None:
                raise Conflict("Start with POST /api/v1/me/two-factor to get a secret first.")
            step = login_code_step(me, data.code, secret_key=key)
            if step is None or not await spend_step(principal.user_id, step):
                raise InvalidInput("The code is wrong or expired.", errors=[FieldError("code", "is wrong or expired")])
            await User.update({User.totp_enabled_at: datetime.now(UTC)}).where(User.id == principal.user_id)
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "user.two_factor_enabled",
                entity="user",
                entity_id=principal.user_id,
                changes={"two_factor": (False, True)},
            )

    @post(
        "/disable",
        opt=AUTHENTICATED,
        status_code=HTTP_204_NO_CONTENT,
        operation_id="disableTwoFactor",
        summary="Turn two-factor login off (password and a current code)",
    )
    async def disable(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[TwoFactorDisable],
        state: State,
    ) -> None:
        key = services_of(state).settings.secret_key.reveal()
        async with tenant_scope(principal.tenant):
            me = await _me(principal)
        if me["totp_enabled_at"] is None:
            raise Conflict("Two-factor login is not on.")
        errors = []
        if not await verify_password(me["password_hash"], data.password):
            errors.append(FieldError("password", "is wrong"))
        step = login_code_step(me, data.code, secret_key=key)
        if step is None:
            errors.append(FieldError("code", "is wrong or expired"))
        if errors:
            raise InvalidInput("Two-factor login stays on: the password or the code is wrong.", errors=errors)
        async with tenant_scope(principal.tenant):
            await _turn_off(principal.user_id)
            await record_audit(
                origin_of(request).actor("user", principal.email, principal.user_id),
                "user.two_factor_disabled",
                entity="user",
                entity_id=principal.user_id,
                changes={"two_factor": (True, False)},
            )


class UserTwoFactorController(Controller):
    path = "/api/v1/users/{user_id:int}/two-factor"
    tags = ["users"]

    @post(
        "/reset",
        opt=permission("users", "update"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="resetUserTwoFactor",
        summary="Turn a user's two-factor login off (a lost phone); they can set it up again",
    )
    async def reset(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        user_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
    ) -> None:
        async with tenant_scope(principal.tenant):
            await reset_two_factor(principal, user_id, origin=origin_of(request))


async def reset_two_factor(principal: Principal, user_id: int, *, origin: Origin) -> bool:
    """An admin turns user ``user_id``'s two-factor login off (a lost phone), inside the open
    tenant scope; they can set it up again. Whether it was on. 403 without ``users.update``,
    404 for a user outside its scope."""
    require_right(principal, "users", "update")
    row = None
    if 1 <= user_id <= MAX_ID:
        visible = await users_in_scope(principal, "update")
        row = await User.select(User.totp_enabled_at).where(User.id == user_id, visible).first()
    if row is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    was_on = row["totp_enabled_at"] is not None
    await _turn_off(user_id)
    await record_audit(
        origin.user(principal),
        "user.two_factor_reset",
        entity="user",
        entity_id=user_id,
        changes={"two_factor": (was_on, False)},
    )
    return was_on


async def two_factor_enabled(user_id: int) -> bool:
    """Whether user ``user_id`` has two-factor login on (inside the open tenant scope; the
    caller has already found the user within its role's scope)."""
    return bool(await User.exists().where(User.id == user_id, User.totp_enabled_at.is_not_null()))


async def _turn_off(user_id: int) -> None:
    await User.update({User.totp_secret: None, User.totp_enabled_at: None, User.totp_last_step: None}).where(
        User.id == user_id
    )
