"""Rules that relate one part of an edition to another.

msgspec has already checked types, ranges and allowed values by the time these run;
here every problem is collected (not just the first) so ``crm editions check`` can list
them all in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ._model import ACTIONS, CustomField, Edition, Entity, Limits, Module, Pipeline

REQUIRED_MODULES: tuple[Module, ...] = ("clients",)
REQUIRED_ROLES = ("admin", "head_of_sales", "manager", "operator")
# The admin of a new tenant must be able to manage users, roles and settings, or nobody can.
ADMIN_ENTITIES: tuple[Entity, ...] = ("users", "roles", "settings")
# A limit on a module the edition lacks must be 0, so the signup page never shows
# "unlimited mailings" for an edition without mailings.
LIMIT_MODULES: dict[str, Module] = {
    "mailings_per_month": "mailings",
    "running_processes": "processes",
    "api_requests_per_minute": "api",
}
ACTION_MODULES: dict[str, Module] = {
    "create_task": "tasks",
    "create_call_task": "calls",
    "send_mail": "mailings",
}
CHOICE_TYPES = ("choice", "multi_choice")


class Problem(NamedTuple):
    field: str
    reason: str


def edition_problems(edition: Edition, *, file_stem: str) -> list[Problem]:
    """Every cross-field problem of ``edition`` (empty when it is consistent)."""
    return [
        *_check_identity(edition, file_stem),
        *_check_modules(edition),
        *_check_billing(edition),
        *_check_limits(edition.limits, edition),
        *_check_pipelines(edition),
        *_check_roles(edition),
        *_check_call_outcomes(edition),
        *_check_task_types(edition),
        *_check_custom_fields(edition),
        *_check_process_templates(edition),
        *_check_settings(edition),
    ]


def _duplicates(keys: Iterable[str], path: str) -> Iterator[Problem]:
    """Report the second and later occurrences of a key under ``path[i].key``."""
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            yield Problem(f"{path}[{index}].key", f"duplicate key {key!r}")
        seen.add(key)


def _section_for_module(
    edition: Edition, module: Module, field: str, count: int, *, required: bool
) -> Iterator[Problem]:
    """A defaults section belongs to its module: required with it (if ``required``), empty without."""
    if edition.has_module(module):
        if required and count == 0:
            yield Problem(field, f"at least one entry is required because module {module!r} is enabled")
    elif count:
        yield Problem(field, f"must be empty: module {module!r} is not enabled")


def _check_identity(edition: Edition, file_stem: str) -> Iterator[Problem]:
    if edition.key != file_stem:
        yield Problem("key", f"must equal the file name {file_stem!r}, got {edition.key!r}")


def _check_modules(edition: Edition) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, module in enumerate(edition.modules):
        if module in seen:
            yield Problem(f"modules[{index}]", f"duplicate module {module!r}")
        seen.add(module)
    for module in REQUIRED_MODULES:
        if module not in edition.modules:
            yield Problem("modules", f"module {module!r} is required in every edition")


def _check_billing(edition: Edition) -> Iterator[Problem]:
    if edition.billing.public and not edition.billing.stripe_price_ids:
        yield Problem("billing.stripe_price_ids", "a public edition needs at least one price id")


def _check_limits(limits: Limits, edition: Edition) -> Iterator[Problem]:
    for name, module in LIMIT_MODULES.items():
        if not edition.has_module(module) and getattr(limits, name) != 0:
            yield Problem(f"limits.{name}", f"must be 0: module {module!r} is not enabled")


def _check_pipelines(edition: Edition) -> Iterator[Problem]:
    pipelines = edition.defaults.pipelines
    yield from _section_for_module(edition, "deals", "defaults.pipelines", len(pipelines), required=True)
    yield from _duplicates((pipeline.key for pipeline in pipelines), "defaults.pipelines")
    for index, pipeline in enumerate(pipelines):
        yield from _check_stages(pipeline, f"defaults.pipelines[{index}]")


def _check_stages(pipeline: Pipeline, path: str) -> Iterator[Problem]:
    kinds = [stage.kind for stage in pipeline.stages]
    if "open" not in kinds:
        yield Problem(f"{path}.stages", "needs at least one open stage")
    if kinds.count("won") != 1:
        yield Problem(f"{path}.stages", f"needs exactly one won stage, found {kinds.count('won')}")
    if "lost" not in kinds:
        yield Problem(f"{path}.stages", "needs at least one lost stage")
    yield from _duplicates((stage.key for stage in pipeline.stages), f"{path}.stages")
    for index, stage in enumerate(pipeline.stages):
        # Forecasts multiply deal amounts by the probability; a closed deal is certain.
        if stage.kind == "won" and stage.probability != 100:
            yield Problem(f"{path}.stages[{index}].probability", "a won stage must have probability 100")
        if stage.kind == "lost" and stage.probability != 0:
            yield Problem(f"{path}.stages[{index}].probability", "a lost stage must have probability 0")


def _check_roles(edition: Edition) -> Iterator[Problem]:
    roles = edition.defaults.roles
    yield from _duplicates((role.key for role in roles), "defaults.roles")
    keys = [role.key for role in roles]
    for required in REQUIRED_ROLES:
        if required not in keys:
            yield Problem("defaults.roles", f"role {required!r} is required")
    for index, role in enumerate(roles):
        if role.key != "admin":
            continue
        for entity in ADMIN_ENTITIES:
            for action in ACTIONS:
                scope = role.rights.scope(entity, action)
                if scope != "all":
                    yield Problem(
                        f"defaults.roles[{index}].rights.{entity}.{action}",
                        f"role 'admin' must have scope 'all' here, got {scope!r}",
                    )


def _check_call_outcomes(edition: Edition) -> Iterator[Problem]:
    outcomes = edition.defaults.call_outcomes
    yield from _section_for_module(edition, "calls", "defaults.call_outcomes", len(outcomes), required=True)
    yield from _duplicates((outcome.key for outcome in outcomes), "defaults.call_outcomes")


def _check_task_types(edition: Edition) -> Iterator[Problem]:
    task_types = edition.defaults.task_types
    yield from _section_for_module(edition, "tasks", "defaults.task_types", len(task_types), required=True)
    yield from _duplicates((task_type.key for task_type in task_types), "defaults.task_types")


def _check_custom_fields(edition: Edition) -> Iterator[Problem]:
    fields = edition.defaults.custom_fields
    yield from _section_for_module(edition, "custom_fields", "defaults.custom_fields", len(fields), required=False)
    # Keys are unique per entity: a client and a deal may both have a "source" field.
    seen: set[tuple[str, str]] = set()
    for index, field in enumerate(fields):
        path = f"defaults.custom_fields[{index}]"
        if (field.entity, field.key) in seen:
            yield Problem(f"{path}.key", f"duplicate key {field.key!r} for entity {field.entity!r}")
        seen.add((field.entity, field.key))
        if field.entity == "deal" and not edition.has_module("deals"):
            yield Problem(f"{path}.entity", "a deal field needs module 'deals'")
        yield from _check_choices(field, path)


def _check_choices(field: CustomField, path: str) -> Iterator[Problem]:
    if field.type in CHOICE_TYPES and not field.choices:
        yield Problem(f"{path}.choices", f"a {field.type} field needs at least one choice")
    if field.type not in CHOICE_TYPES and field.choices:
        yield Problem(f"{path}.choices", f"must be empty for a {field.type} field")
    yield from _duplicates((choice.key for choice in field.choices), f"{path}.choices")


def _check_process_templates(edition: Edition) -> Iterator[Problem]:
    templates = edition.defaults.process_templates
    yield from _section_for_module(edition, "processes", "defaults.process_templates", len(templates), required=False)
    yield from _duplicates((template.key for template in templates), "defaults.process_templates")
    for index, template in enumerate(templates):
        path = f"defaults.process_templates[{index}]"
        if not edition.has_module(template.module):
            yield Problem(f"{path}.module", f"module {template.module!r} is not enabled")
        needed = ACTION_MODULES[template.action]
        if not edition.has_module(needed):
            yield Problem(f"{path}.action", f"action {template.action!r} needs module {needed!r}")


def _check_settings(edition: Edition) -> Iterator[Problem]:
    if edition.defaults.settings.custom_roles_allowed and not edition.has_module("custom_roles"):
        yield Problem("defaults.settings.custom_roles_allowed", "needs module 'custom_roles'")
