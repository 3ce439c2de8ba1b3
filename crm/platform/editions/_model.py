"""The shape of an edition file, as msgspec structs.

Structural rules (types, required fields, allowed values, number ranges, key patterns)
live here in the type annotations, so msgspec enforces them while decoding. Rules that
relate one field to another (a module enables a defaults section, a pipeline needs a won
stage, ...) live in :mod:`._rules`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec

Module = Literal[
    "clients",
    "deals",
    "tasks",
    "calls",
    "bot",
    "mailings",
    "processes",
    "analytics",
    "webforms",
    "api",
    "custom_fields",
    "audit_export",
    "import_export",
    "custom_roles",
]
Entity = Literal[
    "clients",
    "leads",
    "deals",
    "activities",
    "tasks",
    "mailings",
    "processes",
    "users",
    "departments",
    "roles",
    "settings",
    "audit",
    "billing",
    "analytics",
    "imports",
]
Action = Literal["read", "create", "update", "delete", "export", "assign"]
Scope = Literal["none", "own", "department", "all"]
StageKind = Literal["open", "won", "lost"]
CustomFieldEntity = Literal["client", "deal", "lead"]
CustomFieldType = Literal["text", "number", "date", "choice", "multi_choice", "boolean"]
ProcessAction = Literal["create_task", "create_call_task", "send_mail"]

# The tuples are derived from the Literal types so the two can never drift apart.
KNOWN_MODULES: tuple[Module, ...] = get_args(Module)
ENTITIES: tuple[Entity, ...] = get_args(Entity)
ACTIONS: tuple[Action, ...] = get_args(Action)
SCOPES: tuple[Scope, ...] = get_args(Scope)
STAGE_KINDS: tuple[StageKind, ...] = get_args(StageKind)
CUSTOM_FIELD_TYPES: tuple[CustomFieldType, ...] = get_args(CustomFieldType)
PROCESS_ACTIONS: tuple[ProcessAction, ...] = get_args(ProcessAction)

EDITION_KEY_PATTERN = r"^[a-z][a-z0-9_]{1,30}$"
# Keys inside an edition end up in tenant tables as varchar(50) (pipelines, stages, roles, ...).
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
# "<entity>.<event>", e.g. "deal.won"; the process engine owns the list of events.
TRIGGER_PATTERN = r"^[a-z][a-z_]*\.[a-z][a-z_]*$"
PRICE_ID_PATTERN = r"^price_[A-Za-z0-9_]+$"

EditionKey = Annotated[str, msgspec.Meta(pattern=EDITION_KEY_PATTERN)]
Key = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
# At least one non-blank character: an empty or all-spaces name is never intended.
Text = Annotated[str, msgspec.Meta(pattern=r"\S")]
Count = Annotated[int, msgspec.Meta(ge=0)]
# ``None`` (the key left out of the file) means "no limit".
Limit = Annotated[int, msgspec.Meta(ge=0)] | None

# Every struct below is frozen (editions are shared by the whole process), keyword-only, and
# forbids unknown fields, so a misspelt key in a file is an error rather than silently ignored.
# The options are repeated on each class because type checkers do not see inherited ones.


class LocalizedText(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A text in both product languages; both are required."""

    ru: Text
    en: Text

    def get(self, language: str) -> str:
        """The text in ``language`` (``"ru"`` or ``"en"``); anything else falls back to English."""
        return self.ru if language == "ru" else self.en


class Billing(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    # Interval name (``monthly``, ``yearly``, ...) -> Stripe price id.
    stripe_price_ids: dict[Key, Annotated[str, msgspec.Meta(pattern=PRICE_ID_PATTERN)]] = msgspec.field(
        default_factory=dict
    )
    trial_days: Count = 0
    # Shown on the public signup page; a private edition is sold and assigned by staff.
    public: bool = False


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Quotas of a tenant; ``None`` (left out of the file) means unlimited."""

    users: Limit = None
    clients: Limit = None
    mailings_per_month: Limit = None
    running_processes: Limit = None
    storage_mb: Limit = None
    api_requests_per_minute: Limit = None


class Stage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText
    probability: Annotated[int, msgspec.Meta(ge=0, le=100)]
    kind: StageKind = "open"


class Pipeline(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText
    # In display order; the kanban shows them left to right.
    stages: tuple[Stage, ...]


class ActionScopes(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Scope per action on one entity; an action left out is denied."""

    read: Scope = "none"
    create: Scope = "none"
    update: Scope = "none"
    delete: Scope = "none"
    export: Scope = "none"
    assign: Scope = "none"


def _denied() -> ActionScopes:
    return ActionScopes()


class Rights(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Rights of a role per entity; an entity left out is denied for every action.

    A struct rather than a dict so that a misspelt entity or action is reported with its
    exact path (``defaults.roles[2].rights.deals.read``) instead of being ignored.
    """

    clients: ActionScopes = msgspec.field(default_factory=_denied)
    leads: ActionScopes = msgspec.field(default_factory=_denied)
    deals: ActionScopes = msgspec.field(default_factory=_denied)
    activities: ActionScopes = msgspec.field(default_factory=_denied)
    tasks: ActionScopes = msgspec.field(default_factory=_denied)
    mailings: ActionScopes = msgspec.field(default_factory=_denied)
    processes: ActionScopes = msgspec.field(default_factory=_denied)
    users: ActionScopes = msgspec.field(default_factory=_denied)
    departments: ActionScopes = msgspec.field(default_factory=_denied)
    roles: ActionScopes = msgspec.field(default_factory=_denied)
    settings: ActionScopes = msgspec.field(default_factory=_denied)
    audit: ActionScopes = msgspec.field(default_factory=_denied)
    billing: ActionScopes = msgspec.field(default_factory=_denied)
    analytics: ActionScopes = msgspec.field(default_factory=_denied)
    imports: ActionScopes = msgspec.field(default_factory=_denied)

    def scope(self, entity: Entity, action: Action) -> Scope:
        """The scope granted for ``action`` on ``entity`` (``"none"`` when not granted)."""
        if entity not in ENTITIES or action not in ACTIONS:
            # A typo in calling code must not read as "denied" forever.
            raise ValueError(f"unknown right {entity}.{action}")
        scopes: ActionScopes = getattr(self, entity)
        result: Scope = getattr(scopes, action)
        return result

    def granted(self) -> dict[str, dict[str, str]]:
        """Only the granted rights, as ``{entity: {action: scope}}`` (what the roles table stores)."""
        result: dict[str, dict[str, str]] = {}
        for entity in ENTITIES:
            granted: dict[str, str] = {}
            for action in ACTIONS:
                scope = self.scope(entity, action)
                if scope != "none":
                    granted[action] = scope
            if granted:
                result[entity] = granted
        return result


class Role(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText
    rights: Rights = msgspec.field(default_factory=Rights)


class CallOutcome(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText
    # The operator must schedule the next call or task before saving this outcome.
    requires_next_step: bool = False


class TaskType(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText


class Choice(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText


class CustomField(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    entity: CustomFieldEntity
    key: Key
    names: LocalizedText
    type: CustomFieldType
    # Only for ``choice`` and ``multi_choice`` (and required there).
    choices: tuple[Choice, ...] = ()
    required: bool = False


class ProcessTemplate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    key: Key
    names: LocalizedText
    description: LocalizedText
    trigger: Annotated[str, msgspec.Meta(pattern=TRIGGER_PATTERN)]
    delay_days: Count = 0
    action: ProcessAction
    # The module whose records the trigger watches; it must be in the edition.
    module: Module


class TenantSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    require_next_step: bool = False
    custom_roles_allowed: bool = False


class Defaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a new tenant of this edition starts with; the tenant admin may change it later."""

    # The first pipeline is the tenant's default one.
    pipelines: tuple[Pipeline, ...] = ()
    roles: tuple[Role, ...] = ()
    call_outcomes: tuple[CallOutcome, ...] = ()
    task_types: tuple[TaskType, ...] = ()
    custom_fields: tuple[CustomField, ...] = ()
    process_templates: tuple[ProcessTemplate, ...] = ()
    # Renamed words of the interface, e.g. ``client`` -> Покупатель / Buyer.
    labels: dict[Key, LocalizedText] = msgspec.field(default_factory=dict)
    settings: TenantSettings = msgspec.field(default_factory=TenantSettings)


class Edition(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One edition file. Load it with :func:`load_edition_file`; do not build it by hand."""

    key: EditionKey
    # Sort position in lists (signup page, ``crm editions list``); ties are broken by key.
    order: Count = 100
    names: LocalizedText
    billing: Billing
    limits: Limits
    modules: tuple[Module, ...]
    defaults: Defaults

    def has_module(self, name: str) -> bool:
        """Whether the edition includes module ``name``.

        Raises ``ValueError`` for a name that is not a known module, so a typo in a guard
        fails loudly instead of answering 402 forever.
        """
        if name not in KNOWN_MODULES:
            raise ValueError(f"unknown module {name!r}; known modules: {', '.join(KNOWN_MODULES)}")
        return name in self.modules

    def public_summary(self) -> dict[str, Any]:
        """JSON-ready summary for the API and the signup page.

        ``limits`` holds every limit; ``None`` means unlimited.
        """
        return {
            "key": self.key,
            "names": {"ru": self.names.ru, "en": self.names.en},
            "modules": list(self.modules),
            "limits": {name: getattr(self.limits, name) for name in self.limits.__struct_fields__},
        }
