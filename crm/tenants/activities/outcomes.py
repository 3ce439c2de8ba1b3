"""Call outcomes the company logs calls with (tenant setting ``call_outcomes``).

Seeded from the edition; the admin replaces the whole list at once. An outcome removed
later stays on the calls logged with it (they keep its key).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, Forbidden, InvalidInput
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.activities.schemas import CallOutcome
from crm.tenants.activities.services import call_outcomes
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.settings import replace_setting

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_OUTCOMES = 50
MAX_NAME = 100


def _clean(outcomes: list[CallOutcome]) -> list[dict[str, Any]]:
    errors: list[FieldError] = []
    if not 1 <= len(outcomes) <= MAX_OUTCOMES:
        errors.append(FieldError("body", f"must list 1 to {MAX_OUTCOMES} outcomes"))
    seen: set[str] = set()
    cleaned = []
    for index, outcome in enumerate(outcomes):
        if not KEY.fullmatch(outcome.key):
            errors.append(FieldError(f"{index}.key", "must be a-z, 0-9 and _, starting with a letter, at most 50"))
        elif outcome.key in seen:
            errors.append(FieldError(f"{index}.key", "repeats an earlier outcome"))
        seen.add(outcome.key)
        names = {"ru": outcome.names.ru.strip(), "en": outcome.names.en.strip()}
        for language, name in names.items():
            if not 1 <= len(name) <= MAX_NAME:
                errors.append(FieldError(f"{index}.names.{language}", f"must be 1 to {MAX_NAME} characters"))
        cleaned.append({"key": outcome.key, "names": names, "requires_next_step": outcome.requires_next_step})
    if errors:
        raise InvalidInput("The call outcomes have invalid fields.", errors=errors)
    return cleaned


async def replace_call_outcomes(
    principal: Principal, outcomes: list[CallOutcome], *, origin: Origin
) -> list[dict[str, Any]]:
    """Replace the company's call outcomes; audited with the list before and after."""
    if principal.scope("settings", "update") == "none":
        raise Forbidden("Your role does not allow changing the company settings.", permission="settings.update")
    cleaned = _clean(outcomes)
    before = await replace_setting("call_outcomes", cleaned)
    if before != cleaned:
        await record_audit(
            origin.user(principal),
            "settings.call_outcomes_updated",
            entity="setting",
            entity_id="call_outcomes",
            changes={"call_outcomes": (before, cleaned)},
        )
    return cleaned


class CallOutcomesController(Controller):
    path = "/api/v1/settings/call-outcomes"
    tags = ["settings", "activities"]
    guards = [requires_module("calls")]

    @get("/", opt=permission("settings", "read"), operation_id="getCallOutcomes", summary="The company's call outcomes")
    async def get_outcomes(self, principal: NamedDependency[Principal]) -> list[CallOutcome]:
        return msgspec.convert(await read_in_tenant(principal.tenant, call_outcomes), list[CallOutcome])

    @put(
        "/",
        opt=permission("settings", "update"),
        operation_id="replaceCallOutcomes",
        summary="Replace the company's call outcomes",
        description="`requires_next_step`: with the company's require_next_step on, a completed call with this "
        "outcome must come with a next step.",
    )
    async def replace(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[list[CallOutcome]]
    ) -> list[CallOutcome]:
        async with tenant_scope(principal.tenant):
            cleaned = await replace_call_outcomes(principal, data, origin=origin_of(request))
        return msgspec.convert(cleaned, list[CallOutcome])
