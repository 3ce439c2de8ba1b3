"""Inviting staff: the admin names them, they get a signed, expiring, single-use link and
choose their own password.

The link is a signed one-time link (crm.platform.signing) to ``/invite/<token>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput
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
from crm.tenants.users.scopes import require_right
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
    nonce = new_nonce()
    expires_at = datetime.now(UTC) + timedelta(days=INVITATION_DAYS)
    invitation = await Invitation.insert(
        Invitation(user_id=user_id, token_hash=nonce_hash(nonce), expires_at=expires_at)
    ).returning(Invitation.id)
    token = link_token(secret_key, PURPOSE, principal.tenant.id, invitation[0]["id"], nonce)
    link = f"{public_url.rstrip('/')}/invite/{token}"
    subject, body = MAIL[data.locale]
    fields = {
        "company": principal.tenant.slug,
        "name": data.name.strip(),
        "inviter": principal.name,
        "days": INVITATION_DAYS,
        "link": link,
    }
    await queue_mail(to=email, subject=subject.format(**fields), body=body.format(**fields), kind="invitation")
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "user.invited",
        entity="user",
        entity_id=user_id,
        changes={"email": (None, email), "role": (None, data.role), "department_id": (None, data.department_id)},
    )
    return InvitationCreated(user_id=user_id, email=email, expires_at=expires_at)


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
