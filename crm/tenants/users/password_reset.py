"""Forgotten passwords: a signed, single-use link valid for an hour, sent by mail.

Asking for a reset answers 202 whether or not the account exists, so the endpoint tells
nothing about who has an account. Setting the new password revokes every token of the
user and clears any login lockout.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from crm.platform.auth import Origin, Principal, load_tenant
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.lockout import account_key, clear_failures
from crm.platform.passwords import hash_password
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address, origin_of
from crm.platform.services import Services, services_of
from crm.platform.signing import link_token, new_nonce, nonce_hash
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.audit.services import Actor, record_audit
from crm.tenants.mail.outbox import queue_mail
from crm.tenants.users.links import open_link, spend_link
from crm.tenants.users.scopes import records_in_scope, require_right
from crm.tenants.users.tables import AccessToken, PasswordReset, User

PURPOSE = "password-reset"
VALID_FOR = timedelta(hours=1)
MAIL = {
    "en": (
        "Reset your Relay CRM password",
        "Hello {name},\n\nSomeone (hopefully you) asked to reset your password for {company}.\n"
        "Choose a new one here within an hour; the link works once:\n{link}\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n",
    ),
    "ru": (
        "Сброс пароля в Relay CRM",
        "Здравствуйте, {name}!\n\nКто-то (надеемся, вы) попросил сбросить ваш пароль в {company}.\n"
        "Задайте новый пароль по ссылке в течение часа; ссылка действует один раз:\n{link}\n\n"
        "Если это были не вы, просто проигнорируйте письмо: пароль останется прежним.\n",
    ),
}


class ResetRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tenant: str
    email: str


class ResetConfirm(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: str
    password: str


async def request_password_reset(services: Services, tenant_slug: str, email: str, origin: Origin) -> None:
    """Mail a reset link if the account exists and is active; silent otherwise (the caller
    answers the same either way)."""
    tenant = await load_tenant(slug=tenant_slug)
    if tenant is None or not tenant.is_active:
        return
    email = email.strip().lower()
    async with tenant_scope(tenant):
        user = (
            await User.select(User.id, User.name, User.locale)
            .where(User.email == email, User.is_active.eq(True))
            .first()
        )
        if user is None:
            return
        await _mail_reset_link(services, tenant, user, origin.actor("anonymous", email), email=email)


async def send_password_reset(services: Services, principal: Principal, user_id: int, *, origin: Origin) -> str:
    """An admin sends user ``user_id`` a reset link (a forgotten password, a first sign-in
    gone wrong); inside the open tenant scope. Their current password keeps working until
    the link is used. The e-mail address it went to, for the page to say so."""
    require_right(principal, "users", "update")
    user = None
    if 1 <= user_id <= MAX_ID:
        visible = await records_in_scope(principal, "users", "update", User.id)
        user = (
            await User.select(User.id, User.name, User.locale, User.email, User.is_active)
            .where(User.id == user_id, visible)
            .first()
        )
    if user is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    if not user["is_active"]:
        # An inactive user could not sign in with the new password anyway (an invitee has
        # their invitation link instead).
        raise InvalidInput("The user is not active.", errors=[FieldError("user_id", "is not active")])
    await _mail_reset_link(services, principal.tenant, user, origin.user(principal), email=user["email"])
    email: str = user["email"]
    return email


async def _mail_reset_link(
    services: Services, tenant: TenantRef, user: dict[str, Any], actor: Actor, *, email: str
) -> None:
    nonce = new_nonce()
    rows = await PasswordReset.insert(
        PasswordReset(user_id=user["id"], token_hash=nonce_hash(nonce), expires_at=datetime.now(UTC) + VALID_FOR)
    ).returning(PasswordReset.id)
    token = link_token(services.settings.secret_key.reveal(), PURPOSE, tenant.id, rows[0]["id"], nonce)
    subject, body = MAIL.get(user["locale"], MAIL["en"])
    link = f"{services.settings.web.public_url.rstrip('/')}/reset/{token}"
    await queue_mail(
        to=email,
        subject=subject,
        body=body.format(name=user["name"], company=tenant.slug, link=link),
        kind="password_reset",
    )
    await record_audit(actor, "user.password_reset_requested", entity="user", entity_id=user["id"])


async def confirm_password_reset(services: Services, token: str, password: str, origin: Origin) -> TenantRef:
    """Set the new password from a reset link (single use), revoke every session and token
    of the user, clear their lockout; the company, for the sign-in page after it."""
    tenant, parts = await open_link(services.settings.secret_key.reveal(), PURPOSE, token, noun="reset")
    async with tenant_scope(tenant):
        holder = await spend_link(PasswordReset, parts, password, noun="reset")
        email = holder.email
        now = datetime.now(UTC)
        await User.update({User.password_hash: await hash_password(password)}).where(User.id == holder.user_id)
        await AccessToken.update({AccessToken.revoked_at: now}).where(
            AccessToken.user_id == holder.user_id, AccessToken.revoked_at.is_null()
        )
        await record_audit(
            origin.actor("user", email, holder.user_id),
            "user.password_reset",
            entity="user",
            entity_id=holder.user_id,
            changes={"password_hash": ("set", "set")},
        )
    await clear_failures(services.db.pool, account_key(tenant.slug, email))
    return tenant


def reset_rate_key(address: str) -> str:
    return f"reset:{address}"


class PasswordResetController(Controller):
    path = "/api/v1/auth/password-reset"
    tags = ["auth"]

    @post(
        "/",
        opt=PUBLIC,
        status_code=HTTP_202_ACCEPTED,
        operation_id="requestPasswordReset",
        summary="Mail a password reset link (the answer is the same for unknown accounts)",
    )
    async def request_reset(self, request: Request[Any, Any, Any], state: State, data: JSONBody[ResetRequest]) -> None:
        services = services_of(state)
        await check_rate_limit(services.db.pool, reset_rate_key(client_address(request)), limit=10, window_seconds=3600)
        await request_password_reset(services, data.tenant, data.email, origin_of(request))

    @post(
        "/confirm",
        opt=PUBLIC,
        status_code=HTTP_204_NO_CONTENT,
        operation_id="confirmPasswordReset",
        summary="Set a new password from a reset link",
    )
    async def confirm(self, request: Request[Any, Any, Any], state: State, data: JSONBody[ResetConfirm]) -> None:
        services = services_of(state)
        await check_rate_limit(services.db.pool, reset_rate_key(client_address(request)), limit=10, window_seconds=3600)
        await confirm_password_reset(services, data.token, data.password, origin_of(request))
