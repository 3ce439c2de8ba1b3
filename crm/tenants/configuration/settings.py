"""Reading and changing the tenant's named settings (inside the open tenant scope)."""

from __future__ import annotations

from typing import Any

from crm.tenants.configuration.tables import TenantSetting


async def setting(key: str, default: Any = None) -> Any:
    """The value of the tenant setting ``key`` (call_outcomes, task_types, custom_fields,
    settings, company, …), or ``default`` when it is absent."""
    row = await TenantSetting.select(TenantSetting.value).where(TenantSetting.key == key).output(load_json=True).first()
    return default if row is None else row["value"]


async def company_profile() -> dict[str, Any]:
    """``{"name", "locale", "timezone", "phone_region"}`` as set at signup (and edited since)."""
    profile: dict[str, Any] = await setting("company", {})
    return profile


async def flag(name: str, default: bool = False) -> bool:
    """A boolean from the ``settings`` record (``require_next_step``, …)."""
    values: dict[str, Any] = await setting("settings", {})
    return bool(values.get(name, default))


async def replace_setting(key: str, value: Any) -> Any:
    """Store ``value`` as the setting ``key``; return what it was (None if absent). The row is
    locked first, so two admins saving at once are applied one after the other."""
    row = (
        await TenantSetting.select(TenantSetting.value)
        .where(TenantSetting.key == key)
        .lock_rows("NO KEY UPDATE")
        .output(load_json=True)
        .first()
    )
    if row is None:
        await TenantSetting.insert(TenantSetting(key=key, value=value))
        return None
    await TenantSetting.update({TenantSetting.value: value}).where(TenantSetting.key == key)
    return row["value"]
