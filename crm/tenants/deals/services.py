"""Deals: creating, changing, moving through stages and deleting — every channel shares these.

Each function opens the tenant scope itself (joining one that is already open, so lead
conversion can create a deal inside its own transaction), checks the caller's rights in
SQL, validates all fields at once, writes and audits.

Every stage change — including the first, at creation — becomes a row in
``deal_stage_changes`` with its time and actor, and ``deals.stage_changed_at``; the funnel
analytics reads them. A deal's status follows its stage's kind: won and lost close it
(``closed_at``), a lost stage needs a reason, an open stage reopens it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.custom_fields import clean_custom
from crm.tenants.configuration.tables import Pipeline
from crm.tenants.deals.pipelines import first_open_stage, first_pipeline_id, stage_by_id
from crm.tenants.deals.schemas import DealCreate, DealMove, DealUpdate
from crm.tenants.deals.tables import Deal, DealStageChange
from crm.tenants.users.scopes import assignee_problems, records_in_scope, row_in_scope

CURRENCY = re.compile(r"^[A-Z]{3}$")
# NUMERIC(14, 2): twelve digits before the point.
MAX_AMOUNT = Decimal("999999999999.99")
MAX_TITLE = 300
MAX_REASON = 300
OWNERS = (Deal.responsible_id, Deal.author_id)

READ_COLUMNS = (
    Deal.id,
    Deal.title,
    Deal.client_id,
    Deal.pipeline_id,
    Deal.stage_id,
    Deal.amount,
    Deal.currency,
    Deal.probability,
    Deal.expected_close_on,
    Deal.status,
    Deal.lost_reason,
    Deal.closed_at,
    Deal.responsible_id,
    Deal.author_id,
    Deal.custom,
    Deal.stage_changed_at,
    Deal.created_at,
    Deal.updated_at,
)
# What the audit log shows of a deal (timestamps the row keeps anyway are left out).
AUDITED = (
    "title",
    "client_id",
    "pipeline_id",
    "stage_id",
    "amount",
    "currency",
    "probability",
    "expected_close_on",
    "status",
    "lost_reason",
    "closed_at",
    "responsible_id",
    "custom",
)


# ---------------------------------------------------------------- field rules


def title_problems(title: str) -> list[FieldError]:
    return [] if 1 <= len(title.strip()) <= MAX_TITLE else [FieldError("title", "must be 1 to 300 characters")]


def amount_problems(amount: Decimal, field: str = "amount") -> list[FieldError]:
    if not amount.is_finite():
        return [FieldError(field, "must be a number")]
    if amount < 0:
        return [FieldError(field, "must not be negative")]
    if amount > MAX_AMOUNT:
        return [FieldError(field, f"must be at most {MAX_AMOUNT}")]
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        # Money is not rounded behind the caller's back.
        return [FieldError(field, "must have at most 2 decimal places")]
    return []


def currency_problems(currency: str, field: str = "currency") -> list[FieldError]:
    return [] if CURRENCY.fullmatch(currency) else [FieldError(field, "must be an ISO 4217 code of 3 letters (RUB)")]


def probability_problems(probability: int | None) -> list[FieldError]:
    if probability is None or 0 <= probability <= 100:
        return []
    return [FieldError("probability", "must be between 0 and 100")]


def reason_problems(reason: str | None, kind: str) -> list[FieldError]:
    """A lost stage needs a reason (1–300 characters); other stages take none."""
    if kind == "lost":
        if reason is None or not reason.strip():
            return [FieldError("lost_reason", "is required when the deal is lost")]
        if len(reason.strip()) > MAX_REASON:
            return [FieldError("lost_reason", "must be at most 300 characters")]
    elif reason is not None:
        return [FieldError("lost_reason", "is given only when the deal moves to a lost stage")]
    return []


def money(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


async def client_problems(principal: Principal, client_id: int) -> list[FieldError]:
    """The client must exist and be one the caller may see."""
    visible = await records_in_scope(principal, "clients", "read", Client.responsible_id, Client.author_id)
    if await Client.exists().where(Client.id == client_id, visible):
        return []
    return [FieldError("client_id", "is not a client you may see")]


# ---------------------------------------------------------------- reading


async def deal_in_scope(principal: Principal, deal_id: int, action: str, *, lock: bool = False) -> dict[str, Any]:
    """The deal if the caller may ``action`` it, else 404 (inside the open tenant scope)."""
    allowed = await records_in_scope(principal, "deals", action, *OWNERS)
    return await row_in_scope(Deal, READ_COLUMNS, deal_id, allowed, noun="deal", action=action, lock=lock)


async def _deal(deal_id: int) -> dict[str, Any]:
    row: dict[str, Any] | None = (
        await Deal.select(*READ_COLUMNS).where(Deal.id == deal_id).output(load_json=True).first()
    )
    assert row is not None
    return row


# ---------------------------------------------------------------- changes


async def create_deal(principal: Principal, data: DealCreate, *, origin: Origin) -> dict[str, Any]:
    """A new deal with its first stage-history row (from nothing to its stage); returns it."""
    currency = data.currency.strip().upper()
    errors = [
        *title_problems(data.title),
        *amount_problems(data.amount),
        *currency_problems(currency),
        *probability_problems(data.probability),
    ]
    responsible_id = principal.user_id if data.responsible_id is None else data.responsible_id
    async with tenant_scope(principal.tenant):
        errors += await client_problems(principal, data.client_id)
        stage = await _starting_stage(data, errors)
        if stage is not None:
            errors += reason_problems(data.lost_reason, stage["kind"])
        errors += await assignee_problems(principal, "deals", responsible_id)
        custom = await clean_custom(principal, "deal", data.custom, None, errors)
        if errors or stage is None:
            raise InvalidInput("The deal has invalid fields.", errors=errors)
        now = datetime.now(UTC)
        deal = Deal(
            title=data.title.strip(),
            client_id=data.client_id,
            pipeline_id=stage["pipeline_id"],
            stage_id=stage["id"],
            amount=money(data.amount),
            currency=currency,
            probability=stage["probability"] if data.probability is None else data.probability,
            expected_close_on=data.expected_close_on,
            status=stage["kind"],
            lost_reason=data.lost_reason.strip() if stage["kind"] == "lost" and data.lost_reason else None,
            closed_at=None if stage["kind"] == "open" else now,
            responsible_id=responsible_id,
            author_id=principal.user_id,
            custom=custom,
            stage_changed_at=now,
        )
        rows = await Deal.insert(deal).returning(Deal.id)
        deal_id = int(rows[0]["id"])
        await DealStageChange.insert(
            DealStageChange(
                deal_id=deal_id, from_stage_id=None, to_stage_id=stage["id"], changed_at=now, actor_id=principal.user_id
            )
        )
        created = await _deal(deal_id)
        await record_audit(
            origin.user(principal),
            "deal.created",
            entity="deal",
            entity_id=deal_id,
            changes={field: (None, created[field]) for field in AUDITED if created[field] not in (None, {})},
        )
    return created


async def _starting_stage(data: DealCreate, errors: list[FieldError]) -> dict[str, Any] | None:
    """The stage a new deal starts in; problems are added to ``errors``.

    A stage given alone also chooses its pipeline; a pipeline given alone starts at its
    first open stage; neither: the tenant's first pipeline."""
    stage = None if data.stage_id is None else await stage_by_id(data.stage_id)
    if data.stage_id is not None and stage is None:
        errors.append(FieldError("stage_id", "no such stage"))
        return None
    pipeline_id = data.pipeline_id
    if pipeline_id is not None and not await Pipeline.exists().where(Pipeline.id == pipeline_id):
        errors.append(FieldError("pipeline_id", "no such pipeline"))
        return None
    if stage is not None:
        if pipeline_id is not None and stage["pipeline_id"] != pipeline_id:
            errors.append(FieldError("stage_id", "is not a stage of the pipeline"))
            return None
        return stage
    if pipeline_id is None:
        pipeline_id = await first_pipeline_id()
    if pipeline_id is None:
        errors.append(FieldError("pipeline_id", "your company has no pipeline yet"))
        return None
    stage = await first_open_stage(pipeline_id)
    if stage is None:
        errors.append(FieldError("pipeline_id", "the pipeline has no open stage"))
    return stage


async def update_deal(principal: Principal, deal_id: int, data: DealUpdate, *, origin: Origin) -> dict[str, Any]:
    """Change a deal's fields (not its stage: see :func:`move_deal`); returns the deal."""
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if data.title is not msgspec.UNSET:
        errors += title_problems(data.title)
        changes["title"] = data.title.strip()
    if data.amount is not msgspec.UNSET:
        amount_errors = amount_problems(data.amount)
        errors += amount_errors
        changes["amount"] = data.amount if amount_errors else money(data.amount)
    if data.currency is not msgspec.UNSET:
        changes["currency"] = data.currency.strip().upper()
        errors += currency_problems(changes["currency"])
    if data.probability is not msgspec.UNSET:
        errors += probability_problems(data.probability)
        changes["probability"] = data.probability
    if data.expected_close_on is not msgspec.UNSET:
        changes["expected_close_on"] = data.expected_close_on
    async with tenant_scope(principal.tenant):
        current = await deal_in_scope(principal, deal_id, "update", lock=True)
        if data.client_id is not msgspec.UNSET and data.client_id != current["client_id"]:
            errors += await client_problems(principal, data.client_id)
            changes["client_id"] = data.client_id
        if data.responsible_id is not msgspec.UNSET and data.responsible_id != current["responsible_id"]:
            errors += await assignee_problems(principal, "deals", data.responsible_id)
            changes["responsible_id"] = data.responsible_id
        if data.custom is not msgspec.UNSET:
            changes["custom"] = await clean_custom(principal, "deal", data.custom, current["custom"], errors)
        if errors:
            raise InvalidInput("The deal change has invalid fields.", errors=errors)
        diff = {field: (current[field], value) for field, value in changes.items() if current[field] != value}
        if not diff:
            return current
        values = {getattr(Deal, field): after for field, (_, after) in diff.items()}
        await Deal.update({**values, Deal.updated_at: datetime.now(UTC)}).where(Deal.id == deal_id)
        await record_audit(origin.user(principal), "deal.updated", entity="deal", entity_id=deal_id, changes=diff)
        return await _deal(deal_id)


async def move_deal(principal: Principal, deal_id: int, data: DealMove, *, origin: Origin) -> dict[str, Any]:
    """Move a deal to a stage (of any pipeline) and record the change with its time.

    The status follows the stage's kind; the probability follows the stage unless given.
    Moving to the stage the deal is in changes nothing (a retried request is harmless)."""
    errors = probability_problems(data.probability)
    async with tenant_scope(principal.tenant):
        current = await deal_in_scope(principal, deal_id, "update", lock=True)
        stage = await stage_by_id(data.stage_id)
        if stage is None:
            errors.append(FieldError("stage_id", "no such stage"))
        else:
            errors += reason_problems(data.lost_reason, stage["kind"])
        if errors or stage is None:
            raise InvalidInput("The move is not valid.", errors=errors)
        if stage["id"] == current["stage_id"]:
            return current
        now = datetime.now(UTC)
        kind = stage["kind"]
        after = {
            "pipeline_id": stage["pipeline_id"],
            "stage_id": stage["id"],
            "status": kind,
            "probability": stage["probability"] if data.probability is None else data.probability,
            "lost_reason": data.lost_reason.strip() if kind == "lost" and data.lost_reason else None,
            # Between two stages of the same closed kind the deal stays closed since then.
            "closed_at": None if kind == "open" else current["closed_at"] if current["status"] == kind else now,
        }
        values = {getattr(Deal, field): value for field, value in after.items()}
        await Deal.update({**values, Deal.stage_changed_at: now, Deal.updated_at: now}).where(Deal.id == deal_id)
        await DealStageChange.insert(
            DealStageChange(
                deal_id=deal_id,
                from_stage_id=current["stage_id"],
                to_stage_id=stage["id"],
                changed_at=now,
                actor_id=principal.user_id,
            )
        )
        diff = {field: (current[field], value) for field, value in after.items() if current[field] != value}
        await record_audit(origin.user(principal), "deal.moved", entity="deal", entity_id=deal_id, changes=diff)
        return await _deal(deal_id)


async def delete_deal(principal: Principal, deal_id: int, *, origin: Origin) -> None:
    """Delete a deal and its stage history; tasks, activities and leads keep a null link.
    The audit row keeps what the deal was."""
    async with tenant_scope(principal.tenant):
        current = await deal_in_scope(principal, deal_id, "delete", lock=True)
        await Deal.delete().where(Deal.id == deal_id)
        await record_audit(
            origin.user(principal),
            "deal.deleted",
            entity="deal",
            entity_id=deal_id,
            changes={field: (current[field], None) for field in AUDITED if current[field] not in (None, {})},
        )
