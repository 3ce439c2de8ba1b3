"""Inviting staff: the admin names them, they get a signed, expiring, single-use link and
choose their own password.

The link is a signed one-time link (crm.platform.signing) to ``/invite/<token>``. An admin
may resend an invitation not yet accepted (lost, or expired): a fresh link is mailed and the
earlier ones stop working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.passwords import hash_password
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address, origin_of, permission
from crm.platform.services import services_of
from crm.platform.signing import link_token, new_nonce, nonce_hash
from crm.platform.signup import EMAIL, LOCALES
from crm.platform.tables import Identity
from crm.platform.tenancy import TenantRef, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.limits import ensure_room
from crm.tenants.configuration.tables import Role
from crm.tenants.mail.outbox import queue_mail
from crm.tenants.users.links import check_link, open_link, spend_link
from crm.tenants.users.scopes import records_in_scope, require_right
from crm.tenants.users.tables import Department, Invitation, User

INVITATION_DAYS = 7
PURPOSE = "invite"

MAIL = {
    "en": (
        "You are invited to {company} on Relay CRM",
        "Hello {name},\n\n{inviter} invites you to {company} on Relay CRM.\n"
        "Choose your password here (the link works once, for {days} days):\n{link}\n",
    ),
    "ru": (
        "Приглашение в {company} в Relay CRM",
        "Здравствуйте, {name}!\n\n{inviter} приглашает вас в {company} в Relay CRM.\n"
        "Задайте пароль по ссылке (она действует один раз, {days} дн.):\n{link}\n",
    ),
}


class InvitationCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: str
    name: str
    role: str
    department_id: int | None = None
    locale: str = "en"


class InvitationCreated(msgspec.Struct, kw_only=True):
    user_id: int
    email: str
    expires_at: datetime


class InvitationAccept(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: str
    password: str
    # The invitee may correct the name the admin typed; left out, it stays.
    name: str | None = None


class InvitationAccepted(msgspec.Struct, kw_only=True):
    tenant: str
    email: str


async def invite_user(
    principal: Principal, data: InvitationCreate, *, secret_key: str, public_url: str, origin: Origin
) -> InvitationCreated:
    """Create the user (inactive, no password), the invitation and its mail, in one scope."""
    require_right(principal, "users", "create")
    email = data.email.strip().lower()
    errors = []
    if len(email) > 320 or not EMAIL.fullmatch(email):
        errors.append(FieldError("email", "is not a valid e-mail address"))
    if not data.name.strip() or len(data.name) > 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    if data.locale not in LOCALES:
        errors.append(FieldError("locale", f"must be one of: {', '.join(LOCALES)}"))
    if not await Role.exists().where(Role.key == data.role):
        errors.append(FieldError("role", "no such role"))
    if data.department_id is not None and not await Department.exists().where(Department.id == data.department_id):
        errors.append(FieldError("department_id", "no such department"))
    if errors:
        raise InvalidInput("The invitation has invalid fields.", errors=errors)
    if await User.exists().where(User.email == email):
        raise Conflict("A user with this e-mail already exists.", errors=[FieldError("email", "is already a user")])
    await ensure_room(principal, "users")
    rows = await User.insert(
        User(
            email=email,
            name=data.name.strip(),
            role=data.role,
            department_id=data.department_id,
            locale=data.locale,
            is_active=False,
        )
    ).returning(User.id)
    user_id = int(rows[0]["id"])
    invitee = _Invitee(user_id=user_id, email=email, name=data.name.strip(), locale=data.locale)
    expires_at = await _mail_invitation(principal, invitee, secret_key=secret_key, public_url=public_url)
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "user.invited",
        entity="user",
        entity_id=user_id,
        changes={"email": (None, email), "role": (None, data.role), "department_id": (None, data.department_id)},
    )
    return InvitationCreated(user_id=user_id, email=email, expires_at=expires_at)


async def resend_invitation(
    principal: Principal, user_id: int, *, secret_key: str, public_url: str, origin: Origin
) -> InvitationCreated:
    """Mail user ``user_id`` a fresh invitation link (inside the open tenant scope); every
    earlier link of theirs stops working. Only for someone invited who has not joined yet;
    an expired invitation may be resent too (it takes a seat again, so the quota is checked)."""
    require_right(principal, "users", "create")
    user = None
    if 1 <= user_id <= MAX_ID:
        visible = await records_in_scope(principal, "users", "create", User.id)
        # Locked: two concurrent resends must not both leave a working link behind.
        user = (
            await User.select(User.id, User.email, User.name, User.locale, User.is_active)
            .where(User.id == user_id, visible)
            .lock_rows()
            .first()
        )
    if user is None:
        raise NotFound(f"There is no user {user_id} you may invite.")
    invitations = await Invitation.select(Invitation.expires_at, Invitation.used_at).where(
        Invitation.user_id == user_id
    )
    if user["is_active"] or not invitations or any(row["used_at"] is not None for row in invitations):
        # Active, deactivated after joining, or never invited (the company's owner): they
        # have a password; a password reset link is what helps them.
        raise Conflict(
            "The user has no pending invitation.", errors=[FieldError("user_id", "has no pending invitation")]
        )
    now = datetime.now(UTC)
    if not any(row["expires_at"] > now for row in invitations):
        await ensure_room(principal, "users")
    # The earlier links go: deleted rather than left expired, so no unused row outlives the
    # accepted one (the "invited" status reads the user's unused invitations).
    await Invitation.delete().where(Invitation.user_id == user_id)
    invitee = _Invitee(user_id=user_id, email=user["email"], name=user["name"], locale=user["locale"])
    expires_at = await _mail_invitation(principal, invitee, secret_key=secret_key, public_url=public_url)
    await record_audit(
        origin.user(principal),
        "user.invitation_resent",
        entity="user",
        entity_id=user_id,
        changes={"invitation_expires_at": (None, expires_at.isoformat())},
    )
    return InvitationCreated(user_id=user_id, email=user["email"], expires_at=expires_at)


@dataclass(frozen=True)
class _Invitee:
    user_id: int
    email: str
    name: str
    locale: str


async def _mail_invitation(principal: Principal, invitee: _Invitee, *, secret_key: str, public_url: str) -> datetime:
    """A new invitation row for ``invitee`` and its link by mail; when the link expires."""
    nonce = new_nonce()
    expires_at = datetime.now(UTC) + timedelta(days=INVITATION_DAYS)
    invitation = await Invitation.insert(
        Invitation(user_id=invitee.user_id, token_hash=nonce_hash(nonce), expires_at=expires_at)
    ).returning(Invitation.id)
    token = link_token(secret_key, PURPOSE, principal.tenant.id, invitation[0]["id"], nonce)
    subject, body = MAIL.get(invitee.locale, MAIL["en"])
    fields = {
        "company": principal.tenant.slug,
        "name": invitee.name,
        "inviter": principal.name,
        "days": INVITATION_DAYS,
        "link": f"{public_url.rstrip('/')}/invite/{token}",
    }
    await queue_mail(to=invitee.email, subject=subject.format(**fields), body=body.format(**fields), kind="invitation")
    return expires_at


@dataclass(frozen=True)
class PendingInvitation:
    """What the invitation page shows before the invitee sets a password."""

    tenant: TenantRef
    email: str
    name: str
    locale: str


async def open_invitation(token: str, *, secret_key: str) -> PendingInvitation:
    """The invitation behind a link that can still be used (410 otherwise); spends nothing."""
    tenant, parts = await open_link(secret_key, PURPOSE, token, noun="invitation")
    async with tenant_scope(tenant):
        _, holder = await check_link(Invitation, parts, noun="invitation")
    return PendingInvitation(tenant=tenant, email=holder.email, name=holder.name, locale=holder.locale)


async def accept_invitation(
    token: str, password: str, *, secret_key: str, origin: Origin, name: str | None = None
) -> InvitationAccepted:
    """Check the link, set the invitee's password (and name, when given), activate them;
    the link is then spent."""
    if name is not None:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("The name is not valid.", errors=[FieldError("name", "must be 1 to 200 characters")])
    tenant, parts = await open_link(secret_key, PURPOSE, token, noun="invitation")
    async with tenant_scope(tenant):
        holder = await spend_link(Invitation, parts, password, noun="invitation")
        email = holder.email
        values: dict[Any, Any] = {User.password_hash: await hash_password(password), User.is_active: True}
        changes: dict[str, tuple[object, object]] = {"is_active": (False, True), "password_hash": (None, "set")}
        if name is not None and name != holder.name:
            values[User.name] = name
            changes["name"] = (holder.name, name)
        await User.update(values).where(User.id == holder.user_id)
        await Identity.insert(Identity(email=email, tenant_id=tenant.id, user_id=holder.user_id))
        await record_audit(
            origin.actor("user", email, holder.user_id),
            "user.invitation_accepted",
            entity="user",
            entity_id=holder.user_id,
            changes=changes,
        )
    return InvitationAccepted(tenant=tenant.slug, email=email)


class InvitationsController(Controller):
    path = "/api/v1"
    tags = ["users"]

    @post(
        "/users/invitations",
        opt=permission("users", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="inviteUser",
        summary="Invite a staff member: they get a link to set their password",
    )
    async def invite(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        state: State,
        data: JSONBody[InvitationCreate],
    ) -> InvitationCreated:
        settings = services_of(state).settings
        async with tenant_scope(principal.tenant):
            return await invite_user(
                principal,
                data,
                secret_key=settings.secret_key.reveal(),
                public_url=settings.web.public_url,
                origin=origin_of(request),
            )

    @post(
        "/users/{user_id:int}/invitation/resend",
        opt=permission("users", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="resendInvitation",
        summary="Mail an invited user a fresh invitation link; their earlier links stop working",
    )
    async def resend(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        state: State,
        user_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)],
    ) -> InvitationCreated:
        settings = services_of(state).settings
        async with tenant_scope(principal.tenant):
            return await resend_invitation(
                principal,
                user_id,
                secret_key=settings.secret_key.reveal(),
                public_url=settings.web.public_url,
                origin=origin_of(request),
            )

    @post(
        "/invitations/accept",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        operation_id="acceptInvitation",
        summary="Set your password from an invitation link",
    )
    async def accept(
        self, request: Request[Any, Any, Any], state: State, data: JSONBody[InvitationAccept]
    ) -> InvitationAccepted:
        services = services_of(state)
        await check_rate_limit(services.db.pool, f"invite:{client_address(request)}", limit=30, window_seconds=300)
        return await accept_invitation(
            data.token,
            data.password,
            secret_key=services.settings.secret_key.reveal(),
            origin=origin_of(request),
            name=data.name,
        )
