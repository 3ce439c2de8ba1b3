"""The tenant's mail settings: sender name and address, and the mailing rate limit.

Stored in the tenant setting ``mail``; absent fields fall back to the product's sender
(``CRM_MAIL_FROM``) and :data:`DEFAULT_RATE_PER_MINUTE`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.mail import Sender, current_mail
from crm.platform.security import origin_of, permission
from crm.platform.signup import EMAIL
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import replace_setting, setting

SETTING = "mail"
DEFAULT_RATE_PER_MINUTE = 600
MAX_RATE_PER_MINUTE = 100_000


class MailSettingsRead(msgspec.Struct, kw_only=True):
    from_name: str
    from_address: str
    rate_per_minute: int
    # Where mail goes in this installation (an SMTP server or the outbox folder); read only.
    transport: str


class MailSettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; null returns a field to the product default."""

    from_name: str | msgspec.UnsetType | None = msgspec.UNSET
    from_address: str | msgspec.UnsetType | None = msgspec.UNSET
    rate_per_minute: int | msgspec.UnsetType | None = msgspec.UNSET


async def tenant_sender() -> Sender:
    """The sender of the tenant whose scope is open."""
    stored: dict[str, Any] = await setting(SETTING, {})
    default = current_mail().default_sender
    return Sender(stored.get("from_name") or default.name, stored.get("from_address") or default.address)


async def tenant_rate_per_minute() -> int:
    stored: dict[str, Any] = await setting(SETTING, {})
    return int(stored.get("rate_per_minute") or DEFAULT_RATE_PER_MINUTE)


async def _read() -> MailSettingsRead:
    sender = await tenant_sender()
    return MailSettingsRead(
        from_name=sender.name,
        from_address=sender.address,
        rate_per_minute=await tenant_rate_per_minute(),
        transport="smtp" if current_mail().settings.mail.smtp is not None else "outbox folder",
    )


def _clean(data: MailSettingsUpdate) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    if data.from_name is not msgspec.UNSET:
        name = " ".join((data.from_name or "").split())
        if len(name) > 100 or any(char in name for char in '<>"\r\n'):
            errors.append(FieldError("from_name", "must be at most 100 characters without <, > or quotes"))
        values["from_name"] = name or None
    if data.from_address is not msgspec.UNSET:
        address = (data.from_address or "").strip().lower()
        if address and (len(address) > 320 or not EMAIL.fullmatch(address)):
            errors.append(FieldError("from_address", "is not a valid e-mail address"))
        values["from_address"] = address or None
    if data.rate_per_minute is not msgspec.UNSET:
        if data.rate_per_minute is not None and not 1 <= data.rate_per_minute <= MAX_RATE_PER_MINUTE:
            errors.append(FieldError("rate_per_minute", f"must be 1 to {MAX_RATE_PER_MINUTE}"))
        values["rate_per_minute"] = data.rate_per_minute
    if errors:
        raise InvalidInput("The mail settings have invalid fields.", errors=errors)
    return values


async def update_mail_settings(principal: Principal, data: MailSettingsUpdate, *, origin: Origin) -> MailSettingsRead:
    """Change the tenant's sender or rate; audited as ``settings.mail_updated``."""
    values = _clean(data)
    async with tenant_scope(principal.tenant):
        current: dict[str, Any] = await setting(SETTING, {})
        diff = {field: (current.get(field), value) for field, value in values.items() if current.get(field) != value}
        if diff:
            await replace_setting(SETTING, {**current, **values})
            await record_audit(
                origin.user(principal), "settings.mail_updated", entity="setting", entity_id=SETTING, changes=diff
            )
        return await _read()


class MailSettingsController(Controller):
    path = "/api/v1/settings/mail"
    tags = ["settings"]

    @get("/", opt=permission("settings", "read"), operation_id="getMailSettings", summary="Sender and mailing rate")
    async def get_settings(self, principal: NamedDependency[Principal]) -> MailSettingsRead:
        return await read_in_tenant(principal.tenant, _read)

    @patch(
        "/",
        opt=permission("settings", "update"),
        operation_id="updateMailSettings",
        summary="Change the sender name and address of the company's mail, or its mailing rate",
    )
    async def update(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[MailSettingsUpdate]
    ) -> MailSettingsRead:
        return await update_mail_settings(principal, data, origin=origin_of(request))
