"""The admin's editor of custom fields: the whole list is read and replaced at once.

A field keeps its type while records hold values for it (changing it would leave values
that no longer fit); removing a field hides its values, which stay stored on the records.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from crm.platform.auth import Origin, Principal
from crm.platform.editions import CUSTOM_FIELD_TYPES
from crm.platform.errors import Conflict, FieldError, InvalidInput
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import replace_setting, setting

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_FIELDS = 100
MAX_CHOICES = 100
MAX_NAME = 100
# The table whose ``custom`` column holds each entity's values.
TABLES = {"client": "clients", "deal": "deals", "lead": "leads"}
WITH_CHOICES = ("choice", "multi_choice")


class Names(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ru: str
    en: str


class ChoiceDefinition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    names: Names


class CustomFieldDefinition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    entity: str
    key: str
    names: Names
    type: str
    choices: list[ChoiceDefinition] = msgspec.field(default_factory=list)
    required: bool = False


def _names(names: Names, field: str, errors: list[FieldError]) -> dict[str, str]:
    cleaned = {"ru": names.ru.strip(), "en": names.en.strip()}
    for language, name in cleaned.items():
        if not 1 <= len(name) <= MAX_NAME:
            errors.append(FieldError(f"{field}.{language}", f"must be 1 to {MAX_NAME} characters"))
    return cleaned


def clean_definitions(fields: list[CustomFieldDefinition]) -> list[dict[str, Any]]:
    """The definitions in their stored form; 422 naming every bad field (``3.choices.0.key``)."""
    errors: list[FieldError] = []
    if len(fields) > MAX_FIELDS:
        errors.append(FieldError("body", f"at most {MAX_FIELDS} custom fields"))
    seen: set[tuple[str, str]] = set()
    cleaned = []
    for index, field in enumerate(fields):
        at = str(index)
        if field.entity not in TABLES:
            errors.append(FieldError(f"{at}.entity", f"must be one of {', '.join(TABLES)}"))
        if not KEY.fullmatch(field.key):
            errors.append(FieldError(f"{at}.key", "must be a-z, 0-9 and _, starting with a letter, at most 50"))
        elif (field.entity, field.key) in seen:
            errors.append(FieldError(f"{at}.key", "repeats an earlier field of the same entity"))
        seen.add((field.entity, field.key))
        if field.type not in CUSTOM_FIELD_TYPES:
            errors.append(FieldError(f"{at}.type", f"must be one of {', '.join(CUSTOM_FIELD_TYPES)}"))
        choices = []
        if field.type in WITH_CHOICES and not 1 <= len(field.choices) <= MAX_CHOICES:
            errors.append(FieldError(f"{at}.choices", f"a {field.type} field needs 1 to {MAX_CHOICES} choices"))
        if field.type not in WITH_CHOICES and field.choices:
            errors.append(FieldError(f"{at}.choices", f"only {' and '.join(WITH_CHOICES)} fields have choices"))
        choice_keys: set[str] = set()
        for number, choice in enumerate(field.choices):
            if not KEY.fullmatch(choice.key) or choice.key in choice_keys:
                errors.append(FieldError(f"{at}.choices.{number}.key", "must be a new key of a-z, 0-9 and _"))
            choice_keys.add(choice.key)
            choices.append({"key": choice.key, "names": _names(choice.names, f"{at}.choices.{number}.names", errors)})
        definition = {
            "entity": field.entity,
            "key": field.key,
            "names": _names(field.names, f"{at}.names", errors),
            "type": field.type,
            "required": field.required,
        }
        if choices:
            definition["choices"] = choices
        cleaned.append(definition)
    if errors:
        raise InvalidInput("The custom fields have invalid definitions.", errors=errors)
    return cleaned


async def replace_custom_fields(
    principal: Principal, fields: list[CustomFieldDefinition], *, origin: Origin
) -> list[dict[str, Any]]:
    """Replace the company's custom field definitions; audited with the list before and after."""
    cleaned = clean_definitions(fields)
    async with tenant_scope(principal.tenant):
        before: list[dict[str, Any]] = await setting("custom_fields", [])
        old_types = {(field["entity"], field["key"]): field["type"] for field in before}
        for index, field in enumerate(cleaned):
            old = old_types.get((field["entity"], field["key"]))
            if old is not None and old != field["type"] and await _has_values(field["entity"], field["key"]):
                raise Conflict(
                    f"The field {field['key']!r} holds values; it cannot change from {old} to {field['type']}.",
                    field=f"{index}.type",
                )
        await replace_setting("custom_fields", cleaned)
        await record_audit(
            origin.user(principal),
            "settings.custom_fields_updated",
            entity="setting",
            entity_id="custom_fields",
            changes={"custom_fields": (before, cleaned)},
        )
    return cleaned


async def _has_values(entity: str, key: str) -> bool:
    exists: bool = await scope_connection().fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{TABLES[entity]}" WHERE custom ? $1)',
        key,
    )
    return exists


class CustomFieldsController(Controller):
    path = "/api/v1/settings/custom-fields"
    tags = ["settings"]
    guards = [requires_module("custom_fields")]

    @get("/", opt=permission("settings", "read"), operation_id="listCustomFields", summary="The custom fields")
    async def list_fields(self, principal: NamedDependency[Principal]) -> list[CustomFieldDefinition]:
        rows = await read_in_tenant(principal.tenant, lambda: setting("custom_fields", []))
        return msgspec.convert(rows, list[CustomFieldDefinition])

    @put(
        "/",
        opt=permission("settings", "update"),
        operation_id="replaceCustomFields",
        summary="Replace the custom fields of clients, deals and leads",
    )
    async def replace(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[list[CustomFieldDefinition]],
    ) -> list[CustomFieldDefinition]:
        cleaned = await replace_custom_fields(principal, data, origin=origin_of(request))
        return msgspec.convert(cleaned, list[CustomFieldDefinition])


CONTROLLERS = [CustomFieldsController]
