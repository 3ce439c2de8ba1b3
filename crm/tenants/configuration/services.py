"""Seeding a new tenant's configuration from its edition's defaults."""

from __future__ import annotations

from typing import Any

import msgspec

from crm.tenants.configuration.tables import Pipeline, PipelineStage, Role, TenantSetting

# Edition defaults stored as named settings (lists of small records the admin edits).
SETTING_DEFAULTS = ("call_outcomes", "task_types", "custom_fields", "process_templates", "labels", "settings")


async def seed_edition_defaults(defaults: Any, *, company: dict[str, Any]) -> None:
    """Insert the edition's pipelines, roles and settings. Runs inside the tenant scope."""
    data: dict[str, Any] = msgspec.to_builtins(defaults)
    for position, pipeline in enumerate(data.get("pipelines") or []):
        rows = await Pipeline.insert(
            Pipeline(key=pipeline["key"], names=pipeline["names"], position=position)
        ).returning(Pipeline.id)
        pipeline_id = rows[0]["id"]
        stages = [
            PipelineStage(
                pipeline_id=pipeline_id,
                key=stage["key"],
                names=stage["names"],
                position=index,
                probability=stage["probability"],
                kind=stage["kind"],
            )
            for index, stage in enumerate(pipeline["stages"])
        ]
        if stages:
            await PipelineStage.insert(*stages)
    # Rights are stored as what is granted only, the same form the roles API writes.
    roles = [
        Role(key=role.key, names=msgspec.to_builtins(role.names), rights=role.rights.granted(), is_system=True)
        for role in defaults.roles
    ]
    if roles:
        await Role.insert(*roles)
    settings = [TenantSetting(key=key, value=data.get(key) or {}) for key in SETTING_DEFAULTS if key in data]
    settings.append(TenantSetting(key="company", value=company))
    await TenantSetting.insert(*settings)
