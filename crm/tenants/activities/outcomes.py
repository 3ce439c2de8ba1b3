"""Call outcomes the company logs calls with (tenant setting ``call_outcomes``).

Seeded from the edition; the admin replaces the whole list at once. An outcome removed
later stays on the calls logged with it (they keep its key).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Forbidden
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.activities.schemas import CallOutcome
from crm.tenants.activities.services import call_outcomes
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.keyed_lists import clean_keyed_list
from crm.tenants.configuration.settings import replace_setting


def _clean(outcomes: list[CallOutcome]) -> list[dict[str, Any]]:
    return clean_keyed_list(
        outcomes,
        noun="call outcome",
        minimum=1,
        extra=lambda outcome: {"requires_next_step": outcome.requires_next_step},
    )


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
