"""Task types the company files tasks under (tenant setting ``task_types``).

Seeded from the edition; the admin replaces the whole list at once, as with call outcomes.
A type removed later stays on the tasks filed under it (they keep its key); new tasks
can no longer choose it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Forbidden
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.keyed_lists import clean_keyed_list
from crm.tenants.configuration.settings import replace_setting, setting


class TaskTypeNames(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ru: str
    en: str


class TaskType(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    names: TaskTypeNames


async def task_types() -> list[dict[str, Any]]:
    """The company's task types in their order (inside the open tenant scope)."""
    return [item for item in await setting("task_types", []) if isinstance(item, dict)]


def clean_task_types(types: list[TaskType]) -> list[dict[str, Any]]:
    """The types in their stored form; 422 naming every bad field (``2.names.ru``)."""
    return clean_keyed_list(types, noun="task type")


async def replace_task_types(principal: Principal, types: list[TaskType], *, origin: Origin) -> list[dict[str, Any]]:
    """Replace the company's task types (inside the open tenant scope); audited with the
    list before and after."""
    if principal.scope("settings", "update") == "none":
        raise Forbidden("Your role does not allow changing the company settings.", permission="settings.update")
    cleaned = clean_task_types(types)
    before = await replace_setting("task_types", cleaned)
    if before != cleaned:
        await record_audit(
            origin.user(principal),
            "settings.task_types_updated",
            entity="setting",
            entity_id="task_types",
            changes={"task_types": (before, cleaned)},
        )
    return cleaned
