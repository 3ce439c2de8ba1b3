"""What the API takes and shows of pipelines, stages, deals and their stage history.

Money is a ``Decimal``: requests may send it as a JSON number or a decimal string, the API
always answers with a string (``"125000.00"``) so no client rounds it through a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

UnsetType = msgspec.UnsetType
UNSET = msgspec.UNSET


# ---------------------------------------------------------------- pipelines


class StageRead(msgspec.Struct, kw_only=True):
    id: int
    key: str
    names: dict[str, str]
    position: int
    probability: int
    kind: str


class PipelineRead(msgspec.Struct, kw_only=True):
    id: int
    key: str
    names: dict[str, str]
    position: int
    stages: list[StageRead]


class PipelineList(msgspec.Struct, kw_only=True):
    items: list[PipelineRead]
    next_cursor: str | None = None


class StageCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A stage. In a new pipeline the list order is the stage order; added to an existing
    one, ``position`` places it (default: open stages before the first closed stage,
    won/lost stages at the end)."""

    key: str
    names: dict[str, str]
    probability: int = 0
    kind: str = "open"
    position: int | None = None


class PipelineCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: str
    names: dict[str, str]
    stages: list[StageCreate]


class PipelineUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; ``position`` reorders the pipelines."""

    names: dict[str, str] | UnsetType = UNSET
    position: int | UnsetType = UNSET


class StageUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are; ``position`` reorders the stages."""

    names: dict[str, str] | UnsetType = UNSET
    probability: int | UnsetType = UNSET
    kind: str | UnsetType = UNSET
    position: int | UnsetType = UNSET


# ---------------------------------------------------------------- deals


class DealRead(msgspec.Struct, kw_only=True):
    id: int
    title: str
    client_id: int
    pipeline_id: int
    stage_id: int
    amount: Decimal
    currency: str
    probability: int
    expected_close_on: date | None
    status: str
    lost_reason: str | None
    closed_at: datetime | None
    responsible_id: int | None
    author_id: int | None
    custom: dict[str, Any]
    stage_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class DealPage(msgspec.Struct, kw_only=True):
    items: list[DealRead]
    next_cursor: str | None


class DealCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new deal. Left out: the tenant's first pipeline, its first open stage, the stage's
    probability, RUB, and the caller as the responsible."""

    title: str
    client_id: int
    pipeline_id: int | None = None
    stage_id: int | None = None
    amount: Decimal = Decimal(0)
    currency: str = "RUB"
    probability: int | None = None
    expected_close_on: date | None = None
    responsible_id: int | None = None
    lost_reason: str | None = None  # only when created straight into a lost stage
    custom: dict[str, Any] = msgspec.field(default_factory=dict)


class DealUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: fields left out stay as they are. Stages change through ``/move`` only."""

    title: str | UnsetType = UNSET
    client_id: int | UnsetType = UNSET
    amount: Decimal | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    probability: int | UnsetType = UNSET
    expected_close_on: date | UnsetType | None = UNSET
    responsible_id: int | UnsetType = UNSET
    custom: dict[str, Any] | UnsetType = UNSET


class DealMove(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Move a deal to a stage (of its pipeline or another). ``lost_reason`` is required for
    a lost stage; ``probability`` overrides the stage's."""

    stage_id: int
    lost_reason: str | None = None
    probability: int | None = None


class StageChangeRead(msgspec.Struct, kw_only=True):
    id: int
    from_stage_id: int | None
    to_stage_id: int
    changed_at: datetime
    actor_id: int | None


class StageChangePage(msgspec.Struct, kw_only=True):
    items: list[StageChangeRead]
    next_cursor: str | None
