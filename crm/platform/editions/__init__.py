"""Editions: what each kind of tenant gets, declared in ``<key>.toml`` files next to this module.

A new edition is a new TOML file, no code (see ``docs/editions.md``). Nothing is read at
import time: call :func:`load_editions` once at start-up and pass the result along.

    editions = load_editions()              # raises EditionError on the first bad file
    edition = editions["business"]
    edition.has_module("mailings")          # the 402 guard asks this
    editions.with_module("mailings")        # ["business", "enterprise", "realty"]
"""

from __future__ import annotations

from ._errors import EditionError
from ._load import Editions, check_edition_file, load_edition_file, load_editions, shipped_editions
from ._model import (
    ACTIONS,
    CUSTOM_FIELD_TYPES,
    ENTITIES,
    KNOWN_MODULES,
    PROCESS_ACTIONS,
    SCOPES,
    STAGE_KINDS,
    Action,
    ActionScopes,
    Billing,
    CallOutcome,
    Choice,
    CustomField,
    CustomFieldEntity,
    CustomFieldType,
    Defaults,
    Edition,
    Entity,
    Limits,
    LocalizedText,
    Module,
    Pipeline,
    ProcessAction,
    ProcessTemplate,
    Rights,
    Role,
    Scope,
    Stage,
    StageKind,
    TaskType,
    TenantSettings,
)

__all__ = [
    "ACTIONS",
    "CUSTOM_FIELD_TYPES",
    "ENTITIES",
    "KNOWN_MODULES",
    "PROCESS_ACTIONS",
    "SCOPES",
    "STAGE_KINDS",
    "Action",
    "ActionScopes",
    "Billing",
    "CallOutcome",
    "Choice",
    "CustomField",
    "CustomFieldEntity",
    "CustomFieldType",
    "Defaults",
    "Edition",
    "EditionError",
    "Editions",
    "Entity",
    "Limits",
    "LocalizedText",
    "Module",
    "Pipeline",
    "ProcessAction",
    "ProcessTemplate",
    "Rights",
    "Role",
    "Scope",
    "Stage",
    "StageKind",
    "TaskType",
    "TenantSettings",
    "check_edition_file",
    "load_edition_file",
    "load_editions",
    "shipped_editions",
]
