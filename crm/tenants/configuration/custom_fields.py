"""Custom fields: the tenant's own typed fields on clients, deals and leads.

Definitions live in the ``custom_fields`` tenant setting (seeded from the edition, edited
by the admin): ``{"entity", "key", "names", "type", "choices", "required"}``. Values are
stored in the record's ``custom`` JSONB column in a canonical form — numbers as numbers,
dates as ``YYYY-MM-DD``, choices as their keys — so filters compare like with like.
The whole feature is the edition's ``custom_fields`` module: without it, values are
refused with 402.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.security import ensure_module
from crm.tenants.configuration.settings import setting

MODULE = "custom_fields"
MAX_TEXT = 2000


@dataclass(frozen=True)
class FieldDefinition:
    key: str
    type: str  # text | number | date | choice | multi_choice | boolean
    required: bool
    choices: frozenset[str]

    def canonical(self, value: Any) -> Any:
        """``value`` in its stored form; ValueError with the reason when it does not fit."""
        if self.type == "text":
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise ValueError(f"must be text of at most {MAX_TEXT} characters")
            return value.strip()
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError("must be a number")
            return value
        if self.type == "date":
            try:
                return date.fromisoformat(value).isoformat()
            except (TypeError, ValueError):
                raise ValueError("must be a date (YYYY-MM-DD)") from None
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(sorted(self.choices))}")
            return value
        if self.type == "multi_choice":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError("must be a list of choices")
            unknown = sorted(set(value) - self.choices)
            if unknown:
                raise ValueError(f"unknown choices {', '.join(unknown)}; allowed: {', '.join(sorted(self.choices))}")
            return sorted(set(value))
        raise ValueError(f"has an unknown type {self.type!r}")


async def definitions(entity: str) -> dict[str, FieldDefinition]:
    """The tenant's custom fields of ``entity`` (client, deal, lead), by key."""
    rows: list[dict[str, Any]] = await setting("custom_fields", [])
    return {
        row["key"]: FieldDefinition(
            key=row["key"],
            type=row["type"],
            required=bool(row.get("required")),
            choices=frozenset(choice["key"] for choice in row.get("choices") or ()),
        )
        for row in rows
        if row.get("entity") == entity
    }


async def validate_custom(
    principal: Principal, entity: str, values: dict[str, Any], *, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The record's new ``custom`` value: ``current`` (on update) with ``values`` applied.

    ``null`` removes a value. Every problem is reported at once, each named
    ``custom.<key>``. Raises 402 when the edition has no custom fields and values are given."""
    if values:
        ensure_module(principal.tenant.edition, MODULE)
    fields = await definitions(entity)
    result = dict(current or {})
    errors: list[FieldError] = []
    for key, value in values.items():
        definition = fields.get(key)
        if definition is None:
            errors.append(FieldError(f"custom.{key}", "is not a custom field here"))
        elif value is None:
            result.pop(key, None)
        else:
            try:
                result[key] = definition.canonical(value)
            except ValueError as problem:
                errors.append(FieldError(f"custom.{key}", str(problem)))
    for key, definition in fields.items():
        if (
            definition.required
            and result.get(key) in (None, "", [])
            and not any(e.field == f"custom.{key}" for e in errors)
        ):
            errors.append(FieldError(f"custom.{key}", "is required"))
    if errors:
        raise InvalidInput("Some custom fields are not valid.", errors=errors)
    return result


async def clean_custom(
    principal: Principal,
    entity: str,
    values: dict[str, Any],
    current: dict[str, Any] | None,
    errors: list[FieldError],
) -> dict[str, Any]:
    """:func:`validate_custom`, its problems added to ``errors`` (to be reported with the
    record's other fields) instead of raised; ``current`` stays as it was then."""
    try:
        return await validate_custom(principal, entity, values, current=current)
    except InvalidInput as problem:
        errors.extend(problem.errors)
        return dict(current or {})
