"""Task types the company files tasks under (tenant setting ``task_types``).

Seeded from the edition; the admin replaces the whole list at once, as with call outcomes.
A type removed later stays on the tasks filed under it (they keep its key); new tasks
can no longer choose it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, Forbidden, InvalidInput
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import replace_setting, setting

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_TYPES = 50
MAX_NAME = 100


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
    errors: list[FieldError] = []
    if len(types) > MAX_TYPES:
        errors.append(FieldError("body", f"at most {MAX_TYPES} task types"))
    seen: set[str] = set()
    cleaned = []
    for index, item in enumerate(types):
        if not KEY.fullmatch(item.key):
            errors.append(FieldError(f"{index}.key", "must be a-z, 0-9 and _, starting with a letter, at most 50"))
        elif item.key in seen:
            errors.append(FieldError(f"{index}.key", "repeats an earlier task type"))
        seen.add(item.key)
        names = {"ru": item.names.ru.strip(), "en": item.names.en.strip()}
        for language, name in names.items():
            if not 1 <= len(name) <= MAX_NAME:
                errors.append(FieldError(f"{index}.names.{language}", f"must be 1 to {MAX_NAME} characters"))
        cleaned.append({"key": item.key, "names": names})
    if errors:
        raise InvalidInput("The task types have invalid fields.", errors=errors)
    return cleaned


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
