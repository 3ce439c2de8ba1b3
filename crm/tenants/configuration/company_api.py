"""Company settings: name, time zone, locale and the region local phone numbers are read in.

Stored in the tenant setting ``company`` (which signup seeds); the platform's own record
of the company (name, locale, time zone, shown by ``/me``) follows in the same transaction.
Phones typed after a change of ``phone_region`` are read in the new region; stored
numbers are E.164 already and do not change.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

import msgspec
import phonenumbers
from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, Forbidden, InvalidInput
from crm.platform.security import origin_of, permission
from crm.platform.tables import Tenant
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import company_profile
from crm.tenants.configuration.tables import TenantSetting

LOCALES = ("ru", "en")
MAX_NAME = 200


class CompanySettings(msgspec.Struct, kw_only=True):
    name: str
    timezone: str
    locale: str
    phone_region: str


class CompanySettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    phone_region: str | msgspec.UnsetType = msgspec.UNSET


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _clean(data: CompanySettingsUpdate) -> dict[str, str]:
    values: dict[str, str] = {}
    errors: list[FieldError] = []
    if data.name is not msgspec.UNSET:
        values["name"] = " ".join(data.name.split())
        if not 1 <= len(values["name"]) <= MAX_NAME:
            errors.append(FieldError("name", f"must be 1 to {MAX_NAME} characters"))
    if data.timezone is not msgspec.UNSET:
        values["timezone"] = data.timezone.strip()
        if values["timezone"] not in _timezones():
            errors.append(FieldError("timezone", "is not a known IANA time zone, e.g. Europe/Moscow"))
    if data.locale is not msgspec.UNSET:
        values["locale"] = data.locale.strip().lower()
        if values["locale"] not in LOCALES:
            errors.append(FieldError("locale", f"must be one of: {', '.join(LOCALES)}"))
    if data.phone_region is not msgspec.UNSET:
        values["phone_region"] = data.phone_region.strip().upper()
        if values["phone_region"] not in phonenumbers.SUPPORTED_REGIONS:
            errors.append(FieldError("phone_region", "is not a country code phone numbers know, e.g. RU, KZ, US"))
    if errors:
        raise InvalidInput("The company settings have invalid fields.", errors=errors)
    return values


def _read(profile: dict[str, Any]) -> CompanySettings:
    return CompanySettings(
        name=profile.get("name", ""),
        timezone=profile.get("timezone", "UTC"),
        locale=profile.get("locale", "en"),
        phone_region=profile.get("phone_region", ""),
    )


async def update_company_settings(
    principal: Principal, data: CompanySettingsUpdate, *, origin: Origin
) -> CompanySettings:
    """Change the company's settings; audited as ``settings.company_updated`` with before/after."""
    if principal.scope("settings", "update") == "none":
        raise Forbidden("Your role does not allow changing the company settings.", permission="settings.update")
    values = _clean(data)
    async with tenant_scope(principal.tenant):
        row = (
            await TenantSetting.select(TenantSetting.value)
            .where(TenantSetting.key == "company")
            .lock_rows("NO KEY UPDATE")
            .output(load_json=True)
            .first()
        )
        current: dict[str, Any] = row["value"] if row else {}
        diff = {field: (current.get(field), value) for field, value in values.items() if current.get(field) != value}
        if diff:
            profile = {**current, **values}
            if row is None:
                await TenantSetting.insert(TenantSetting(key="company", value=profile))
            else:
                await TenantSetting.update({TenantSetting.value: profile}).where(TenantSetting.key == "company")
            mirrored = {
                getattr(Tenant, field): values[field] for field in ("name", "locale", "timezone") if field in diff
            }
            if mirrored:
                await Tenant.update(mirrored).where(Tenant.id == principal.tenant.id)
            await record_audit(
                origin.user(principal), "settings.company_updated", entity="setting", entity_id="company", changes=diff
            )
            current = profile
        return _read(current)


class CompanySettingsController(Controller):
    path = "/api/v1/settings/company"
    tags = ["settings"]

    @get("/", opt=permission("settings", "read"), operation_id="getCompanySettings", summary="The company's settings")
    async def get_settings(self, principal: NamedDependency[Principal]) -> CompanySettings:
        return _read(await read_in_tenant(principal.tenant, company_profile))

    @patch(
        "/",
        opt=permission("settings", "update"),
        operation_id="updateCompanySettings",
        summary="Change the company's name, time zone, locale or phone region",
        description="`phone_region` (ISO country, e.g. RU) is how local numbers typed afterwards are read.",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[CompanySettingsUpdate],
    ) -> CompanySettings:
        return await update_company_settings(principal, data, origin=origin_of(request))
