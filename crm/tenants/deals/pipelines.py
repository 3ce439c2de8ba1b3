"""Pipelines and their stages: read by everyone who works with deals, edited by the admin.

Positions are dense and zero-based (0, 1, 2, …) among the tenant's pipelines and among
the stages of one pipeline; every insert, move and delete shifts the neighbours so they
stay that way. Edits of one pipeline lock its row, so two admins reordering at the same
moment take turns instead of producing two stages at one position.

Rules a pipeline keeps: at least one open, one won and one lost stage (deals need
somewhere to start and to end), and no stage is removed or changes its kind while deals
sit in it (a deal's status always follows its stage's kind).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import msgspec

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, NotFound
from crm.platform.tenancy import tenant_scope
from crm.tenants.audit.services import record_audit
from crm.tenants.configuration.tables import Pipeline, PipelineStage
from crm.tenants.deals.schemas import PipelineCreate, PipelineUpdate, StageCreate, StageUpdate
from crm.tenants.deals.tables import Deal

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
LANGUAGES = ("ru", "en")
STAGE_KINDS = ("open", "won", "lost")
MAX_NAME = 100

STAGE_COLUMNS = (
    PipelineStage.id,
    PipelineStage.pipeline_id,
    PipelineStage.key,
    PipelineStage.names,
    PipelineStage.position,
    PipelineStage.probability,
    PipelineStage.kind,
)


# ---------------------------------------------------------------- reading


async def list_pipelines(pipeline_id: int | None = None) -> list[dict[str, Any]]:
    """Pipelines (or the one asked for) in order, each with its stages in order.
    Runs inside the open tenant scope."""
    query = Pipeline.select(Pipeline.id, Pipeline.key, Pipeline.names, Pipeline.position).output(load_json=True)
    if pipeline_id is not None:
        query = query.where(Pipeline.id == pipeline_id)
    pipelines = await query.order_by(Pipeline.position).order_by(Pipeline.id)
    if not pipelines:
        return []
    stages = (
        await PipelineStage.select(*STAGE_COLUMNS)
        .where(PipelineStage.pipeline_id.is_in([p["id"] for p in pipelines]))
        .output(load_json=True)
        .order_by(PipelineStage.position)
        .order_by(PipelineStage.id)
    )
    for pipeline in pipelines:
        pipeline["stages"] = [stage for stage in stages if stage["pipeline_id"] == pipeline["id"]]
    return pipelines


async def stage_by_id(stage_id: int) -> dict[str, Any] | None:
    """One stage with its pipeline id, kind and probability (inside the open scope)."""
    row: dict[str, Any] | None = (
        await PipelineStage.select(*STAGE_COLUMNS).where(PipelineStage.id == stage_id).output(load_json=True).first()
    )
    return row


async def first_pipeline_id() -> int | None:
    """The tenant's default pipeline: the first by position."""
    row = await Pipeline.select(Pipeline.id).order_by(Pipeline.position).order_by(Pipeline.id).first()
    return None if row is None else int(row["id"])


async def first_open_stage(pipeline_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await PipelineStage.select(*STAGE_COLUMNS)
        .where(PipelineStage.pipeline_id == pipeline_id, PipelineStage.kind == "open")
        .output(load_json=True)
        .order_by(PipelineStage.position)
        .order_by(PipelineStage.id)
        .first()
    )
    return row


# ---------------------------------------------------------------- validation


def names_problems(names: dict[str, str], field: str = "names") -> list[FieldError]:
    """Names in both languages, each 1–100 characters; no other languages."""
    errors = []
    for language in LANGUAGES:
        value = names.get(language)
        if value is None or not value.strip():
            errors.append(FieldError(f"{field}.{language}", "is required"))
        elif len(value.strip()) > MAX_NAME:
            errors.append(FieldError(f"{field}.{language}", f"must be at most {MAX_NAME} characters"))
    for language in names:
        if language not in LANGUAGES:
            errors.append(FieldError(f"{field}.{language}", f"unknown language; use {' and '.join(LANGUAGES)}"))
    return errors


def clean_names(names: dict[str, str]) -> dict[str, str]:
    return {language: names[language].strip() for language in LANGUAGES}


def key_problems(key: str, field: str = "key") -> list[FieldError]:
    if KEY.fullmatch(key):
        return []
    return [FieldError(field, "must be 1–50 characters: a lower-case letter, then letters, digits or _")]


def probability_problems(probability: int, field: str = "probability") -> list[FieldError]:
    return [] if 0 <= probability <= 100 else [FieldError(field, "must be between 0 and 100")]


def kind_problems(kind: str, field: str = "kind") -> list[FieldError]:
    return [] if kind in STAGE_KINDS else [FieldError(field, f"must be one of {', '.join(STAGE_KINDS)}")]


def stage_problems(stage: StageCreate, prefix: str = "") -> list[FieldError]:
    return [
        *key_problems(stage.key, f"{prefix}key"),
        *names_problems(stage.names, f"{prefix}names"),
        *probability_problems(stage.probability, f"{prefix}probability"),
        *kind_problems(stage.kind, f"{prefix}kind"),
    ]


def missing_kinds(kinds: list[str]) -> list[str]:
    return [kind for kind in STAGE_KINDS if kind not in kinds]


def _stage_audit(stage: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {field: (None, stage[field]) for field in ("pipeline_id", "key", "names", "position", "probability", "kind")}


# ---------------------------------------------------------------- changes


async def create_pipeline(principal: Principal, data: PipelineCreate, *, origin: Origin) -> int:
    """A new pipeline after the existing ones, with its stages in the order given."""
    errors = [*key_problems(data.key), *names_problems(data.names)]
    for index, stage in enumerate(data.stages):
        errors += stage_problems(stage, f"stages.{index}.")
        if stage.position is not None:
            errors.append(FieldError(f"stages.{index}.position", "is the stage's place in the list here; leave it out"))
    keys = [stage.key for stage in data.stages]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            errors.append(FieldError(f"stages.{index}.key", "is used by another stage of this pipeline"))
    missing = missing_kinds([stage.kind for stage in data.stages])
    if missing:
        errors.append(FieldError("stages", f"needs at least one stage of each kind; missing: {', '.join(missing)}"))
    if errors:
        raise InvalidInput("The pipeline has invalid fields.", errors=errors)
    async with tenant_scope(principal.tenant):
        # Pipelines are few; locking them all orders concurrent creates and reorders.
        existing = await Pipeline.select(Pipeline.id, Pipeline.key).lock_rows()
        if any(row["key"] == data.key for row in existing):
            raise Conflict(
                f"A pipeline with the key {data.key!r} exists.",
                errors=[FieldError("key", "is used by another pipeline")],
            )
        names = clean_names(data.names)
        try:
            rows = await Pipeline.insert(Pipeline(key=data.key, names=names, position=len(existing))).returning(
                Pipeline.id
            )
        except asyncpg.UniqueViolationError:
            # Another admin created the same key a moment ago (an empty table locks nothing).
            raise Conflict(
                f"A pipeline with the key {data.key!r} exists.",
                errors=[FieldError("key", "is used by another pipeline")],
            ) from None
        pipeline_id = int(rows[0]["id"])
        await record_audit(
            origin.user(principal),
            "pipeline.created",
            entity="pipeline",
            entity_id=pipeline_id,
            changes={"key": (None, data.key), "names": (None, names), "position": (None, len(existing))},
        )
        for position, stage in enumerate(data.stages):
            await _insert_stage(principal, pipeline_id, stage, position, origin=origin)
    return pipeline_id


async def update_pipeline(principal: Principal, pipeline_id: int, data: PipelineUpdate, *, origin: Origin) -> None:
    """Rename a pipeline and/or move it to another position among the pipelines."""
    errors = []
    if data.names is not msgspec.UNSET:
        errors += names_problems(data.names)
    if errors:
        raise InvalidInput("The pipeline change has invalid fields.", errors=errors)
    async with tenant_scope(principal.tenant):
        pipelines = (
            await Pipeline.select(Pipeline.id, Pipeline.names, Pipeline.position)
            .output(load_json=True)
            .order_by(Pipeline.position)
            .order_by(Pipeline.id)
            .lock_rows()
        )
        current = next((row for row in pipelines if row["id"] == pipeline_id), None)
        if current is None:
            raise NotFound(f"There is no pipeline {pipeline_id}.")
        diff: dict[str, tuple[Any, Any]] = {}
        if data.names is not msgspec.UNSET and clean_names(data.names) != current["names"]:
            diff["names"] = (current["names"], clean_names(data.names))
            await Pipeline.update({Pipeline.names: clean_names(data.names)}).where(Pipeline.id == pipeline_id)
        if data.position is not msgspec.UNSET:
            order = [row["id"] for row in pipelines if row["id"] != pipeline_id]
            wanted = min(max(data.position, 0), len(order))
            order.insert(wanted, pipeline_id)
            # Renumber from the list: also repairs any gap left by older data.
            for position, row_id in enumerate(order):
                row = next(row for row in pipelines if row["id"] == row_id)
                if row["position"] != position:
                    await Pipeline.update({Pipeline.position: position}).where(Pipeline.id == row_id)
            if current["position"] != wanted:
                diff["position"] = (current["position"], wanted)
        if diff:
            await record_audit(
                origin.user(principal), "pipeline.updated", entity="pipeline", entity_id=pipeline_id, changes=diff
            )


async def add_stage(principal: Principal, pipeline_id: int, data: StageCreate, *, origin: Origin) -> int:
    """A new stage in a pipeline, placed at ``data.position`` (the stages from there on
    move down one). Without a position an open stage goes before the first closed stage,
    a won or lost stage at the end."""
    errors = stage_problems(data)
    if errors:
        raise InvalidInput("The stage has invalid fields.", errors=errors)
    async with tenant_scope(principal.tenant):
        stages = await _locked_stages(pipeline_id)
        if any(stage["key"] == data.key for stage in stages):
            raise Conflict(
                f"The pipeline has a stage with the key {data.key!r}.",
                errors=[FieldError("key", "is used by another stage of this pipeline")],
            )
        if data.position is not None:
            position = min(max(data.position, 0), len(stages))
        elif data.kind == "open":
            position = next((index for index, s in enumerate(stages) if s["kind"] != "open"), len(stages))
        else:
            position = len(stages)
        await _renumber(stages, insert_at=position)
        return await _insert_stage(principal, pipeline_id, data, position, origin=origin)


async def update_stage(
    principal: Principal, pipeline_id: int, stage_id: int, data: StageUpdate, *, origin: Origin
) -> None:
    """Rename a stage, change its probability or kind, or move it to another position."""
    errors = []
    if data.names is not msgspec.UNSET:
        errors += names_problems(data.names)
    if data.probability is not msgspec.UNSET:
        errors += probability_problems(data.probability)
    if data.kind is not msgspec.UNSET:
        errors += kind_problems(data.kind)
    if errors:
        raise InvalidInput("The stage change has invalid fields.", errors=errors)
    async with tenant_scope(principal.tenant):
        stages = await _locked_stages(pipeline_id)
        current = next((stage for stage in stages if stage["id"] == stage_id), None)
        if current is None:
            raise NotFound(f"Pipeline {pipeline_id} has no stage {stage_id}.")
        diff: dict[str, tuple[Any, Any]] = {}
        values: dict[Any, Any] = {}
        if data.names is not msgspec.UNSET and clean_names(data.names) != current["names"]:
            diff["names"] = (current["names"], clean_names(data.names))
            values[PipelineStage.names] = clean_names(data.names)
        if data.probability is not msgspec.UNSET and data.probability != current["probability"]:
            diff["probability"] = (current["probability"], data.probability)
            values[PipelineStage.probability] = data.probability
        if data.kind is not msgspec.UNSET and data.kind != current["kind"]:
            kinds = [data.kind if stage["id"] == stage_id else stage["kind"] for stage in stages]
            missing = missing_kinds(kinds)
            if missing:
                raise InvalidInput(
                    "A pipeline keeps at least one open, one won and one lost stage.",
                    errors=[FieldError("kind", f"the pipeline would have no {', '.join(missing)} stage")],
                )
            if await Deal.exists().where(Deal.stage_id == stage_id):
                raise Conflict(
                    "Deals sit in this stage; move them before changing its kind (their status follows it).",
                    errors=[FieldError("kind", "cannot change while deals are in this stage")],
                )
            diff["kind"] = (current["kind"], data.kind)
            values[PipelineStage.kind] = data.kind
        if values:
            await PipelineStage.update(values).where(PipelineStage.id == stage_id)
        if data.position is not msgspec.UNSET:
            others = [stage for stage in stages if stage["id"] != stage_id]
            wanted = min(max(data.position, 0), len(others))
            await _renumber(others, insert_at=wanted)
            if current["position"] != wanted:
                await PipelineStage.update({PipelineStage.position: wanted}).where(PipelineStage.id == stage_id)
                diff["position"] = (current["position"], wanted)
        if diff:
            await record_audit(
                origin.user(principal),
                "stage.updated",
                entity="stage",
                entity_id=stage_id,
                changes={"pipeline_id": (pipeline_id, pipeline_id), **diff},
            )


async def delete_stage(principal: Principal, pipeline_id: int, stage_id: int, *, origin: Origin) -> None:
    """Remove a stage no deal sits in; the pipeline keeps an open, a won and a lost stage.
    The stage history of deals keeps the removed stage's id."""
    async with tenant_scope(principal.tenant):
        stages = await _locked_stages(pipeline_id)
        current = next((stage for stage in stages if stage["id"] == stage_id), None)
        if current is None:
            raise NotFound(f"Pipeline {pipeline_id} has no stage {stage_id}.")
        deals = await Deal.count().where(Deal.stage_id == stage_id)
        if deals:
            raise Conflict(
                f"{deals} deal(s) sit in this stage; move them to another stage first.", deals_in_stage=deals
            )
        others = [stage for stage in stages if stage["id"] != stage_id]
        missing = missing_kinds([stage["kind"] for stage in others])
        if missing:
            raise InvalidInput(
                "A pipeline keeps at least one open, one won and one lost stage.",
                errors=[FieldError("stage_id", f"is the pipeline's last {', '.join(missing)} stage")],
            )
        try:
            await PipelineStage.delete().where(PipelineStage.id == stage_id)
        except asyncpg.ForeignKeyViolationError:
            # A deal entered the stage after the count (it was not locked by us).
            raise Conflict("A deal entered this stage meanwhile; move it to another stage first.") from None
        await _renumber(others)
        await record_audit(
            origin.user(principal),
            "stage.deleted",
            entity="stage",
            entity_id=stage_id,
            changes={field: (current[field], None) for field in ("pipeline_id", "key", "names", "kind", "probability")},
        )


async def _locked_stages(pipeline_id: int) -> list[dict[str, Any]]:
    """The pipeline's stages in order, after locking the pipeline row against other edits."""
    locked = await Pipeline.select(Pipeline.id).where(Pipeline.id == pipeline_id).lock_rows()
    if not locked:
        raise NotFound(f"There is no pipeline {pipeline_id}.")
    stages: list[dict[str, Any]] = (
        await PipelineStage.select(*STAGE_COLUMNS)
        .where(PipelineStage.pipeline_id == pipeline_id)
        .output(load_json=True)
        .order_by(PipelineStage.position)
        .order_by(PipelineStage.id)
    )
    return stages


async def _renumber(stages: list[dict[str, Any]], *, insert_at: int | None = None) -> None:
    """Give ``stages`` (in order) the positions 0, 1, 2, … leaving ``insert_at`` free."""
    for index, stage in enumerate(stages):
        position = index + 1 if insert_at is not None and index >= insert_at else index
        if stage["position"] != position:
            await PipelineStage.update({PipelineStage.position: position}).where(PipelineStage.id == stage["id"])
            stage["position"] = position


async def _insert_stage(
    principal: Principal, pipeline_id: int, stage: StageCreate, position: int, *, origin: Origin
) -> int:
    values: dict[str, Any] = {
        "pipeline_id": pipeline_id,
        "key": stage.key,
        "names": clean_names(stage.names),
        "position": position,
        "probability": stage.probability,
        "kind": stage.kind,
    }
    rows = await PipelineStage.insert(PipelineStage(**values)).returning(PipelineStage.id)
    stage_id = int(rows[0]["id"])
    await record_audit(
        origin.user(principal), "stage.created", entity="stage", entity_id=stage_id, changes=_stage_audit(values)
    )
    return stage_id
