"""Web forms: forms on a company's own website whose submissions become leads.

Managing them (create, change, deactivate, rotate the key, list) needs the settings
rights (``settings.read`` to look, ``settings.update`` to change) and the edition's
``webforms`` module; every change is audited. The public key of an active form is also
indexed in ``platform.web_form_keys`` (its SHA-256 → company and form), written in the
same transaction as the form, so :func:`form_by_key` resolves a submission's company in
one lookup. A deactivated form keeps its key (activating it again brings it back) but has
no index row: its key answers 404.

:func:`capture_lead` turns a submission into a lead. It does not go through
:func:`crm.tenants.leads.services.create_lead`, which is built around a signed-in user
(the author, the caller's right to assign, the audit row in their name): nobody signed in
posts a web form, so the lead has no author, goes to the form's responsible (while active)
and is audited as ``web_form:<form name>``. It applies the same field rules.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

from crm.platform.auth import Origin, Principal, load_tenant
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.security import ensure_module
from crm.platform.tables import WebFormKey
from crm.platform.tenancy import TenantRef, read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.contacts import clean_emails, clean_phones, phone_region
from crm.tenants.configuration.settings import company_profile
from crm.tenants.leads.services import MAX_NAME, MAX_NOTE, clean_text
from crm.tenants.leads.tables import Lead
from crm.tenants.leads.web_form_schemas import Submission, WebFormCreate, WebFormUpdate
from crm.tenants.leads.web_form_tables import WebForm
from crm.tenants.notifications.channels import notify
from crm.tenants.notifications.recipients import load_recipient
from crm.tenants.notifications.texts import web_lead_notice
from crm.tenants.users.scopes import require_right
from crm.tenants.users.tables import User

MODULE = "webforms"
KEY_BYTES = 16  # 22 url-safe characters
MAX_KEY = 64
MAX_FORM_NAME = 200
MAX_ORIGINS = 20
MAX_ORIGIN = 255
# Plain http only for a developer's own machine; a real site posts over https.
LOCAL_HOSTS = ("localhost", "127.0.0.1")
HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")

READ_COLUMNS = (
    WebForm.id,
    WebForm.name,
    WebForm.public_key,
    WebForm.responsible_id,
    WebForm.allowed_origins,
    WebForm.is_active,
    WebForm.created_at,
    WebForm.author_id,
)


def new_public_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def action_url(public_url: str, key: str) -> str:
    """Where the form posts (``CRM_PUBLIC_URL``: the address the world reaches us at)."""
    return f"{public_url.rstrip('/')}/api/v1/forms/{key}"


def key_hint(key: str) -> str:
    """What the audit log keeps of a key: enough to tell keys apart, not the whole key."""
    return key[:6] + "…"


# ---------------------------------------------------------------- field rules


def clean_origins(raw: list[str], errors: list[FieldError]) -> list[str]:
    """``scheme://host[:port]`` entries, lower case, repeats dropped; each bad one named
    ``allowed_origins.N``."""
    origins: list[str] = []
    if len(raw) > MAX_ORIGINS:
        errors.append(FieldError("allowed_origins", f"at most {MAX_ORIGINS} sites"))
    for index, text in enumerate(raw):
        origin = normal_origin(text)
        if origin is None:
            errors.append(
                FieldError(f"allowed_origins.{index}", "must be a site's address like https://example.com (no path)")
            )
        elif origin not in origins:
            origins.append(origin)
    return origins


def normal_origin(text: str) -> str | None:
    """``text`` written as a browser writes an ``Origin`` header (lower case, punycode, no
    default port), or None when it is not an https site (or http on this machine)."""
    text = text.strip().lower().removesuffix("/")
    if not text or len(text) > MAX_ORIGIN:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
        host = (parts.hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if not (parts.scheme == "http" and host in LOCAL_HOSTS) and not (parts.scheme == "https" and HOST.fullmatch(host)):
        return None
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")


def origin_of_url(url: str) -> str | None:
    """The origin of an absolute http(s) URL (as :func:`normal_origin` writes it), else None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return normal_origin(f"{parts.scheme}://{parts.netloc}")


async def _responsible_problems(responsible_id: int | None) -> list[FieldError]:
    if responsible_id is None:
        return []
    active = await User.exists().where(User.id == responsible_id, User.is_active.eq(True))
    return [] if active else [FieldError("responsible_id", "is not an active user of the company")]


def _name(raw: str, errors: list[FieldError]) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= MAX_FORM_NAME:
        errors.append(FieldError("name", f"must be 1 to {MAX_FORM_NAME} characters"))
    return name


# ---------------------------------------------------------------- managing


def _may(principal: Principal, action: str) -> None:
    ensure_module(principal.tenant.edition, MODULE)
    require_right(principal, "settings", action)


async def list_web_forms(principal: Principal) -> list[dict[str, Any]]:
    """Every form of the company, newest first."""
    _may(principal, "read")

    async def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await WebForm.select(*READ_COLUMNS).order_by(WebForm.id, ascending=False)
        return found

    return await read_in_tenant(principal.tenant, rows)


async def responsible_choices(principal: Principal) -> list[dict[str, Any]]:
    """``{id, name}`` of the active users a form's leads may go to, by name."""
    _may(principal, "read")

    async def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (
            await User.select(User.id, User.name).where(User.is_active.eq(True)).order_by(User.name).limit(1000)
        )
        return found

    return await read_in_tenant(principal.tenant, rows)


async def _form(form_id: int, *, lock: bool = False) -> dict[str, Any]:
    query = WebForm.select(*READ_COLUMNS).where(WebForm.id == form_id)
    if lock:
        query = query.lock_rows("NO KEY UPDATE")
    row: dict[str, Any] | None = await query.first()
    if row is None:
        raise NotFound(f"Web form {form_id} does not exist.")
    return row


async def _index_key(tenant: TenantRef, form_id: int, key: str | None) -> None:
    """Point the platform's key index at ``key`` for this form (None: no key, the form is off)."""
    await WebFormKey.delete().where(WebFormKey.tenant_id == tenant.id, WebFormKey.form_id == form_id)
    if key is not None:
        await WebFormKey.insert(WebFormKey(key_hash=key_hash(key), tenant_id=tenant.id, form_id=form_id))


async def create_web_form(principal: Principal, data: WebFormCreate, *, origin: Origin) -> dict[str, Any]:
    """A new active form with a fresh key; returns it."""
    _may(principal, "update")
    errors: list[FieldError] = []
    name = _name(data.name, errors)
    origins = clean_origins(data.allowed_origins, errors)
    async with tenant_scope(principal.tenant):
        errors += await _responsible_problems(data.responsible_id)
        if errors:
            raise InvalidInput("The web form has invalid fields.", errors=errors)
        key = new_public_key()
        values: dict[str, Any] = {"name": name, "responsible_id": data.responsible_id, "allowed_origins": origins}
        rows = await WebForm.insert(
            WebForm(**values, public_key=key, is_active=True, author_id=principal.user_id)
        ).returning(WebForm.id)
        form_id = int(rows[0]["id"])
        await _index_key(principal.tenant, form_id, key)
        await record_audit(
            origin.user(principal),
            "web_form.created",
            entity="web_form",
            entity_id=form_id,
            changes={
                **{field: (None, value) for field, value in values.items() if value not in (None, [])},
                "public_key": (None, key_hint(key)),
            },
        )
        return await _form(form_id)


async def update_web_form(principal: Principal, form_id: int, data: WebFormUpdate, *, origin: Origin) -> dict[str, Any]:
    """Rename the form, change where its leads go or who may post it, switch it off or on."""
    _may(principal, "update")
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if data.name is not msgspec.UNSET:
        values["name"] = _name(data.name, errors)
    if data.allowed_origins is not msgspec.UNSET:
        values["allowed_origins"] = clean_origins(data.allowed_origins, errors)
    if data.is_active is not msgspec.UNSET:
        values["is_active"] = data.is_active
    async with tenant_scope(principal.tenant):
        current = await _form(form_id, lock=True)
        if data.responsible_id is not msgspec.UNSET:
            if data.responsible_id != current["responsible_id"]:
                errors += await _responsible_problems(data.responsible_id)
            values["responsible_id"] = data.responsible_id
        if errors:
            raise InvalidInput("The web form change has invalid fields.", errors=errors)
        action = "web_form.updated"
        if values.get("is_active") is False and current["is_active"]:
            action = "web_form.deactivated"
        elif values.get("is_active") is True and not current["is_active"]:
            action = "web_form.activated"
        return await _apply(principal, current, values, action, origin=origin)


async def deactivate_web_form(principal: Principal, form_id: int, *, origin: Origin) -> dict[str, Any]:
    """Switch the form off: its key answers 404 from now on."""
    return await update_web_form(principal, form_id, WebFormUpdate(is_active=False), origin=origin)


async def rotate_web_form_key(principal: Principal, form_id: int, *, origin: Origin) -> dict[str, Any]:
    """A new key for the form; the old one answers 404 at once (the site's snippet must be
    updated)."""
    _may(principal, "update")
    async with tenant_scope(principal.tenant):
        current = await _form(form_id, lock=True)
        key = new_public_key()
        await WebForm.update({WebForm.public_key: key}).where(WebForm.id == form_id)
        if current["is_active"]:
            await _index_key(principal.tenant, form_id, key)
        await record_audit(
            origin.user(principal),
            "web_form.key_rotated",
            entity="web_form",
            entity_id=form_id,
            changes={"public_key": (key_hint(current["public_key"]), key_hint(key))},
        )
        return await _form(form_id)


async def _apply(
    principal: Principal, current: dict[str, Any], values: dict[str, Any], action: str, *, origin: Origin
) -> dict[str, Any]:
    diff = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if not diff:
        return current
    changes: dict[Any, Any] = {getattr(WebForm, field): after for field, (_, after) in diff.items()}
    await WebForm.update(changes).where(WebForm.id == current["id"])
    if "is_active" in diff:
        await _index_key(principal.tenant, current["id"], current["public_key"] if values["is_active"] else None)
    await record_audit(origin.user(principal), action, entity="web_form", entity_id=current["id"], changes=diff)
    return await _form(current["id"])


# ---------------------------------------------------------------- capturing


@dataclass(frozen=True)
class FormTarget:
    """What a public key resolves to: an active form of an active company."""

    tenant: TenantRef
    form_id: int
    name: str
    responsible_id: int | None
    allowed_origins: tuple[str, ...]
    company_name: str
    company_locale: str | None


async def form_by_key(key: str) -> FormTarget | None:
    """The active form whose public key is ``key``, else None (unknown, rotated away,
    deactivated, or its company suspended or deleted)."""
    if not key or len(key) > MAX_KEY:
        return None
    entry = (
        await WebFormKey.select(WebFormKey.tenant_id, WebFormKey.form_id)
        .where(WebFormKey.key_hash == key_hash(key))
        .first()
    )
    if entry is None:
        return None
    tenant = await load_tenant(tenant_id=entry["tenant_id"])
    if tenant is None or not tenant.is_active:
        return None

    async def read() -> tuple[dict[str, Any] | None, dict[str, Any]]:
        # The key is checked again here: the index is a copy, the form's row is the truth.
        form = (
            await WebForm.select(WebForm.name, WebForm.responsible_id, WebForm.allowed_origins)
            .where(WebForm.id == entry["form_id"], WebForm.public_key == key, WebForm.is_active.eq(True))
            .first()
        )
        return form, await company_profile()

    form, profile = await read_in_tenant(tenant, read)
    if form is None:
        return None
    return FormTarget(
        tenant=tenant,
        form_id=entry["form_id"],
        name=form["name"],
        responsible_id=form["responsible_id"],
        allowed_origins=tuple(form["allowed_origins"]),
        company_name=profile.get("name") or tenant.slug,
        company_locale=profile.get("locale"),
    )


async def capture_lead(target: FormTarget, submission: Submission, *, origin: Origin) -> dict[str, Any]:
    """The visitor's submission as a new lead (source ``web_form``) of the form's company;
    422 naming each bad field (``name``, ``phone``, ``email``, ``company``, ``comment``).
    Audited as an anonymous actor labelled ``web_form:<form name>`` on ``origin``'s channel
    (``web_form`` for the public capture route)."""
    errors: list[FieldError] = []
    name = clean_text("name", submission.name, errors, required=True, limit=MAX_NAME)
    company_name = clean_text("company", submission.company, errors, required=False, limit=MAX_NAME)
    note = clean_text("note", submission.comment, [], required=False, limit=MAX_NOTE)
    if len(note) > MAX_NOTE:
        errors.append(FieldError("comment", f"must be at most {MAX_NOTE} characters"))
    emails = _one("email", submission.email, lambda raw, found: clean_emails(raw, found), errors)
    async with tenant_scope(target.tenant):
        region = await phone_region()
        phones = _one("phone", submission.phone, lambda raw, found: clean_phones(raw, region, found), errors)
        if errors:
            raise InvalidInput("The form has invalid fields.", errors=errors)
        responsible_id = target.responsible_id
        if responsible_id is not None and not await User.exists().where(
            User.id == responsible_id, User.is_active.eq(True)
        ):
            responsible_id = None  # the responsible left: the lead waits unassigned
        values: dict[str, Any] = {
            "name": name,
            "company_name": company_name,
            "phones": phones,
            "emails": emails,
            "source": "web_form",
            "note": note,
            "responsible_id": responsible_id,
        }
        rows = await Lead.insert(Lead(**values, custom={}, author_id=None)).returning(Lead.id)
        lead_id = int(rows[0]["id"])
        await record_audit(
            origin.actor("anonymous", f"web_form:{target.name}"),
            "lead.created",
            entity="lead",
            entity_id=lead_id,
            changes={field: (None, value) for field, value in values.items() if value not in (None, "", [])},
        )
        # The responsible hears of it at once, on their channels (console, e-mail, Telegram),
        # in this transaction: a lead that rolls back tells nobody.
        recipient = await load_recipient(responsible_id) if responsible_id is not None else None
        if recipient is not None:
            notice = web_lead_notice(
                recipient, name=name, form=target.name, contacts=[*phones, *emails], lead_id=lead_id
            )
            await notify(target.tenant, recipient, notice)
        return {"id": lead_id, **values}


def _one(
    field: str, text: str, clean: Callable[[list[str], list[FieldError]], list[str]], errors: list[FieldError]
) -> list[str]:
    """One phone or e-mail through the leads' own rule, its problem named ``field``."""
    text = text.strip()
    if not text:
        return []
    found: list[FieldError] = []
    cleaned: list[str] = clean([text], found)
    errors.extend(FieldError(field, problem.detail) for problem in found)
    return cleaned
