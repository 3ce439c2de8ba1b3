"""The pipelines and stages editor: add a pipeline, rename and reorder pipelines; add,
rename, re-weigh, re-kind, reorder and delete stages — through the services the pipelines
API uses, so the same rules hold (an open, a won and a lost stage in every pipeline; no
stage removed or changing its kind while deals sit in it).

Every stage and every pipeline has its own small form; a refused change comes back with
the errors on that form only, the rest of the page as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, PathParameter

from crm.admin_ui.admin_forms import after_save, ensure_allowed, field_errors, notice_of, settings_tabs, status_of, text
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.texts import add_texts
from crm.platform.errors import Conflict, FieldError, InvalidInput
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.deals.pipelines import (
    STAGE_KINDS,
    add_stage,
    create_pipeline,
    delete_stage,
    list_pipelines,
    update_pipeline,
    update_stage,
)
from crm.tenants.deals.schemas import PipelineCreate, PipelineUpdate, StageCreate, StageUpdate

PATH = "/admin/settings/pipelines"
Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
MODULE = "deals"
# A new pipeline starts with the least a pipeline must have; the admin adds and renames.
STARTER_STAGES = (
    ("new", {"ru": "Новая", "en": "New"}, 10, "open"),
    ("won", {"ru": "Успешно", "en": "Won"}, 100, "won"),
    ("lost", {"ru": "Отказ", "en": "Lost"}, 0, "lost"),
)

add_texts(
    {
        "ru": {
            "settings.pipelines.title": "Воронки и этапы",
            "settings.pipelines.intro": "В каждой воронке есть хотя бы один открытый, один успешный и один "
            "проигранный этап. Этап, в котором есть сделки, нельзя удалить или сменить ему вид — сначала "
            "переведите сделки.",
            "settings.pipelines.pipeline": "Воронка",
            "settings.pipelines.rename": "Переименовать воронку",
            "settings.pipelines.stages": "Этапы",
            "settings.pipelines.probability": "Вероятность, %",
            "settings.pipelines.kind": "Вид",
            "settings.pipelines.kind.open": "Открытый",
            "settings.pipelines.kind.won": "Успешный",
            "settings.pipelines.kind.lost": "Проигранный",
            "settings.pipelines.add_stage": "Новый этап",
            "settings.pipelines.add_pipeline": "Новая воронка",
            "settings.pipelines.new_hint": "Воронка начнётся с трёх этапов: «Новая», «Успешно» и «Отказ» — "
            "добавьте и переименуйте этапы после создания.",
            "settings.pipelines.number": "Нужно целое число от 0 до 100.",
        },
        "en": {
            "settings.pipelines.title": "Pipelines and stages",
            "settings.pipelines.intro": "Every pipeline has at least one open, one won and one lost stage. A stage "
            "deals sit in cannot be deleted or change its kind; move the deals first.",
            "settings.pipelines.pipeline": "Pipeline",
            "settings.pipelines.rename": "Rename the pipeline",
            "settings.pipelines.stages": "Stages",
            "settings.pipelines.probability": "Probability, %",
            "settings.pipelines.kind": "Kind",
            "settings.pipelines.kind.open": "Open",
            "settings.pipelines.kind.won": "Won",
            "settings.pipelines.kind.lost": "Lost",
            "settings.pipelines.add_stage": "New stage",
            "settings.pipelines.add_pipeline": "New pipeline",
            "settings.pipelines.new_hint": "The pipeline starts with three stages, New, Won and Lost; add and rename "
            "stages once it is created.",
            "settings.pipelines.number": "Must be a whole number from 0 to 100.",
        },
    }
)


@dataclass
class Refused:
    """A change that was not made: which form it came from, what was typed, what is wrong."""

    form: str  # "pipeline-3", "stage-12", "new-stage-3", "new-pipeline"
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)


async def _page(
    console: Console, *, refused: Refused | None = None, notice: str | None = None, status: int = 200
) -> Response[str]:
    pipelines = await read_in_tenant(console.tenant, list_pipelines)
    return render(
        console,
        "admin_settings_pipelines.html",
        status_code=status,
        tabs=settings_tabs(console),
        pipelines=pipelines,
        kinds=[(kind, console.texts(f"settings.pipelines.kind.{kind}")) for kind in STAGE_KINDS],
        refused=refused,
        notice=notice,
        can_edit=console.may("settings", "update"),
    )


def _names(values: dict[str, str]) -> dict[str, str]:
    return {"ru": values.get("ru", ""), "en": values.get("en", "")}


def _probability(console: Console, values: dict[str, str]) -> int:
    raw = values.get("probability", "")
    if not raw.isdigit():
        message = console.texts("settings.pipelines.number")
        raise InvalidInput(message, errors=[FieldError("probability", message)])
    return int(raw)


async def _posted(request: Request[Any, Any, Any], names: tuple[str, ...]) -> dict[str, str]:
    form = await request.form()
    return {name: text(form, name) for name in names}


async def _change(
    console: Console, request: Request[Any, Any, Any], form_id: str, values: dict[str, str], change: Any
) -> Response[Any]:
    """Run ``change()``; the page with the errors on form ``form_id`` when it is refused."""
    try:
        await change()
    except (InvalidInput, Conflict) as problem:
        refused = Refused(form_id, values, field_errors(problem))
        return await _page(console, refused=refused, status=status_of(problem))

    async def show(notice: str) -> Response[str]:
        return await _page(console, notice=notice)

    return await after_save(console, request, PATH, show)


async def _editor(request: Request[Any, Any, Any], company: str) -> Console:
    console = await open_console(request, company)
    ensure_allowed(console, "settings", "update", MODULE)
    return console


class PipelinesPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def pipelines_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "read", MODULE)
        return await _page(console, notice=notice_of(console, request))

    @post(PATH, opt=PUBLIC)
    async def new_pipeline(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        console = await _editor(request, company)
        values = await _posted(request, ("key", "ru", "en"))
        stages = [
            StageCreate(key=key, names=names, probability=probability, kind=kind)
            for key, names, probability, kind in STARTER_STAGES
        ]
        data = PipelineCreate(key=values["key"], names=_names(values), stages=stages)
        return await _change(
            console,
            request,
            "new-pipeline",
            values,
            lambda: create_pipeline(console.user, data, origin=console.origin()),
        )

    @post(PATH + "/{pipeline_id:int}", opt=PUBLIC)
    async def change_pipeline(
        self, request: Request[Any, Any, Any], company: FromPath[str], pipeline_id: Id
    ) -> Response[Any]:
        console = await _editor(request, company)
        values = await _posted(request, ("ru", "en", "op", "position"))
        if values["op"] in ("up", "down") and values["position"].isdigit():
            step = -1 if values["op"] == "up" else 1
            data = PipelineUpdate(position=max(0, int(values["position"]) + step))
        else:
            data = PipelineUpdate(names=_names(values))
        return await _change(
            console,
            request,
            f"pipeline-{pipeline_id}",
            values,
            lambda: update_pipeline(console.user, pipeline_id, data, origin=console.origin()),
        )

    @post(PATH + "/{pipeline_id:int}/stages", opt=PUBLIC)
    async def new_stage(
        self, request: Request[Any, Any, Any], company: FromPath[str], pipeline_id: Id
    ) -> Response[Any]:
        console = await _editor(request, company)
        values = await _posted(request, ("key", "ru", "en", "probability", "kind"))

        async def change() -> None:
            data = StageCreate(
                key=values["key"],
                names=_names(values),
                probability=_probability(console, values),
                kind=values["kind"] or "open",
            )
            await add_stage(console.user, pipeline_id, data, origin=console.origin())

        return await _change(console, request, f"new-stage-{pipeline_id}", values, change)

    @post(PATH + "/{pipeline_id:int}/stages/{stage_id:int}", opt=PUBLIC)
    async def change_stage(
        self,
        request: Request[Any, Any, Any],
        company: FromPath[str],
        pipeline_id: Id,
        stage_id: Id,
    ) -> Response[Any]:
        console = await _editor(request, company)
        values = await _posted(request, ("ru", "en", "probability", "kind", "op", "position"))
        op = values["op"] or "save"

        async def change() -> None:
            if op == "delete":
                await delete_stage(console.user, pipeline_id, stage_id, origin=console.origin())
                return
            if op in ("up", "down") and values["position"].isdigit():
                step = -1 if op == "up" else 1
                data = StageUpdate(position=max(0, int(values["position"]) + step))
            else:
                data = StageUpdate(names=_names(values), probability=_probability(console, values), kind=values["kind"])
            await update_stage(console.user, pipeline_id, stage_id, data, origin=console.origin())

        return await _change(console, request, f"stage-{stage_id}", values, change)


CONTROLLERS: list[type] = [PipelinesPageController]
