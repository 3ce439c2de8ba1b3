"""Rules about users that every channel shares: who may see or change whom, and changes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from piccolo.columns.combination import Combinable

from crm.bot.links import unlink_user
from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.limits import ensure_room
from crm.tenants.configuration.tables import Role
from crm.tenants.users.schemas import WorkingHours
from crm.tenants.users.scopes import records_in_scope, require_right
from crm.tenants.users.tables import AccessToken, Department, User

# The name of the access tokens that are console sessions (crm/admin_ui/sessions.py).
CONSOLE_SESSION = "console"


async def users_in_scope(principal: Principal, action: str) -> Combinable:
    """SQL condition for the users ``principal`` may ``action`` (read, update, …): a user's
    own id is the "owner" column, so ``department`` covers the users of the principal's
    department and the ones below it, ``own`` the principal alone."""
    return await records_in_scope(principal, "users", action, User.id)


PROFILE_FIELDS = ("name", "locale", "timezone", "working_hours", "birthday")
EARLIEST_BIRTHDAY = date(1900, 1, 1)
LOCALES = ("ru", "en")
MAX_ROLES = 10
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def profile_problems(changes: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Name, locale, timezone and working hours in their stored form, and what is wrong."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    if "name" in changes:
        values["name"] = changes["name"].strip()
        if not 1 <= len(values["name"]) <= 200:
            errors.append(FieldError("name", "must be 1 to 200 characters"))
    if "locale" in changes:
        values["locale"] = changes["locale"]
        if values["locale"] not in LOCALES:
            errors.append(FieldError("locale", "must be ru or en"))
    if "timezone" in changes:
        values["timezone"] = changes["timezone"]
        if values["timezone"] not in available_timezones():
            errors.append(FieldError("timezone", "is not an IANA time zone (Europe/Moscow, …)"))
    if "working_hours" in changes:
        hours: WorkingHours = changes["working_hours"]
        days = sorted(set(hours.days))
        if not days or not all(1 <= day <= 7 for day in days):
            errors.append(FieldError("working_hours.days", "must list weekdays 1 (Monday) to 7 (Sunday)"))
        for part in ("start", "end"):
            if not _TIME.fullmatch(getattr(hours, part)):
                errors.append(FieldError(f"working_hours.{part}", "must be a time HH:MM"))
        if _TIME.fullmatch(hours.start) and _TIME.fullmatch(hours.end) and hours.start >= hours.end:
            errors.append(FieldError("working_hours.end", "must be after the start"))
        values["working_hours"] = {"days": days, "start": hours.start, "end": hours.end}
    if "birthday" in changes:
        values["birthday"] = changes["birthday"]
        if values["birthday"] is not None and not EARLIEST_BIRTHDAY <= values["birthday"] <= _latest_today():
            errors.append(FieldError("birthday", "must be a date from 1900-01-01 up to today"))
    return values, errors


def _latest_today() -> date:
    """Today's date where the day began first (UTC+14): a date that is today for someone
    east of the server is not in the future."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()


async def _role_problems(changes: dict[str, Any], values: dict[str, Any], errors: list[FieldError]) -> None:
    if "role" in changes and "roles" in changes:
        errors.append(FieldError("roles", "give either role (the main one) or roles (all of them)"))
        return
    wanted = [changes["role"]] if "role" in changes else changes.get("roles")
    if wanted is None:
        return
    if not 1 <= len(wanted) <= MAX_ROLES or len(set(wanted)) != len(wanted):
        errors.append(FieldError("roles", f"must list 1 to {MAX_ROLES} different roles"))
        return
    known = set(await Role.select(Role.key).where(Role.key.is_in(wanted)).output(as_list=True))
    for index, role in enumerate(wanted):
        if role not in known:
            errors.append(FieldError("role" if "role" in changes else f"roles.{index}", "no such role"))
    values["role"] = wanted[0]
    if "roles" in changes:
        values["extra_roles"] = wanted[1:]


async def update_user(principal: Principal, user_id: int, changes: dict[str, Any], *, origin: Origin) -> dict[str, Any]:
    """Change a user's profile, department and roles; audited with before and after."""
    require_right(principal, "users", "update")
    condition = await users_in_scope(principal, "update")
    current = (
        await User.select(User.id, User.department_id, User.role, User.extra_roles, *_PROFILE_COLUMNS)
        .where(User.id == user_id, condition)
        .output(load_json=True)
        .first()
    )
    if current is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    values, errors = profile_problems(changes)
    if changes.get("department_id") is not None and not await Department.exists().where(
        Department.id == changes["department_id"]
    ):
        errors.append(FieldError("department_id", "no such department"))
    if "department_id" in changes:
        values["department_id"] = changes["department_id"]
    await _role_problems(changes, values, errors)
    if errors:
        raise InvalidInput("The user change has invalid fields.", errors=errors)
    await _apply(principal, current, values, origin=origin)
    return {**current, **values}


async def update_profile(principal: Principal, changes: dict[str, Any], *, origin: Origin) -> None:
    """The user changes their own name, locale, timezone, working hours or birthday."""
    current = (
        await User.select(User.id, *_PROFILE_COLUMNS).where(User.id == principal.user_id).output(load_json=True).first()
    )
    if current is None:
        raise NotFound("Your user no longer exists.")
    values, errors = profile_problems({key: changes[key] for key in PROFILE_FIELDS if key in changes})
    if errors:
        raise InvalidInput("The profile has invalid fields.", errors=errors)
    await _apply(principal, current, values, origin=origin)


_PROFILE_COLUMNS = (User.name, User.locale, User.timezone, User.working_hours, User.birthday)


async def _apply(principal: Principal, current: dict[str, Any], values: dict[str, Any], *, origin: Origin) -> None:
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if not diff:
        return
    await User.update({getattr(User, field): after for field, (_, after) in diff.items()}).where(
        User.id == current["id"]
    )
    await record_audit(origin.user(principal), "user.updated", entity="user", entity_id=current["id"], changes=diff)


async def create_department(principal: Principal, name: str, parent_id: int | None, *, origin: Origin) -> int:
    require_right(principal, "departments", "create")
    name = name.strip()
    errors = []
    if not 1 <= len(name) <= 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    if parent_id is not None and not await Department.exists().where(Department.id == parent_id):
        errors.append(FieldError("parent_id", "no such department"))
    if errors:
        raise InvalidInput("The department has invalid fields.", errors=errors)
    rows = await Department.insert(Department(name=name, parent_id=parent_id)).returning(Department.id)
    department_id = int(rows[0]["id"])
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "department.created",
        entity="department",
        entity_id=department_id,
        changes={"name": (None, name), "parent_id": (None, parent_id)},
    )
    return department_id


async def set_user_active(principal: Principal, user_id: int, active: bool, *, origin: Origin) -> None:
    """Deactivate or reactivate a user. Takes effect on the user's very next request: every
    token is checked against ``is_active`` each time. Deactivation also ends the user's
    console sessions for good, so a later reactivation does not revive a browser left signed
    in; their API tokens (integrations) only pause while the user is inactive."""
    require_right(principal, "users", "update")
    if user_id == principal.user_id and not active:
        raise InvalidInput("You cannot deactivate yourself.", errors=[FieldError("user_id", "is you")])
    condition = await users_in_scope(principal, "update")
    current = await User.select(User.is_active).where(User.id == user_id, condition).first()
    if current is None:
        raise NotFound(f"There is no user {user_id} you may change.")
    if current["is_active"] == active:
        return
    if active:
        await ensure_room(principal, "users")
    await User.update({User.is_active: active}).where(User.id == user_id)
    changes: dict[str, tuple[object, object]] = {"is_active": (not active, active)}
    if not active:
        await unlink_user(principal.tenant.id, user_id)  # the bot forgets them with the same commit
        ended = (
            await AccessToken.update({AccessToken.revoked_at: datetime.now(UTC)})
            .where(
                AccessToken.user_id == user_id,
                AccessToken.name == CONSOLE_SESSION,
                AccessToken.revoked_at.is_null(),
            )
            .returning(AccessToken.id)
        )
        if ended:
            changes["console_sessions"] = (len(ended), 0)
    await record_audit(
        origin.actor("user", principal.email, principal.user_id),
        "user.reactivated" if active else "user.deactivated",
        entity="user",
        entity_id=user_id,
        changes=changes,
    )
