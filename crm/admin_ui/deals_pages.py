"""The deals kanban: one pipeline at a time, a column per stage with its figures and its
latest deals, and a way to move each deal that works without JavaScript (a stage list and
a "Move" button on every card); ``kanban.js`` adds drag and drop on top of those forms.

Moving goes through ``move_deal`` like the API: a lost stage needs the reason (422 with the
field named), and the move is audited with the channel "console".
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from markupsafe import Markup

from crm.admin_ui.clients_forms import FieldErrors, invalid
from crm.admin_ui.console import Console, is_htmx, open_console, redirect, render, require
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.deals.board import BoardColumn, deals_board, stage_cards
from crm.tenants.deals.pipelines import list_pipelines
from crm.tenants.deals.schemas import DealMove
from crm.tenants.deals.services import move_deal
from crm.tenants.tasks.reads import zone_of

# Cards a column shows at first and per "More": enough to work a stage, few enough that the
# board stays a light page however many deals the pipeline holds.
CARDS_PER_COLUMN = 20

register_page("/deals")

add_texts(
    {
        "ru": {
            "deals.title": "Сделки",
            "deals.pipeline": "Воронка",
            "deals.show": "Показать",
            "deals.count.one": "{count} сделка",
            "deals.count.few": "{count} сделки",
            "deals.count.many": "{count} сделок",
            "deals.move_to": "Перенести в этап",
            "deals.move": "Перенести",
            "deals.lost_reason": "Причина проигрыша",
            "deals.no_client": "клиент недоступен",
            "deals.empty": "Нет сделок",
            "deals.more_in_stage": "Ещё сделки этапа «{stage}»",
            "deals.board": "Доска сделок",
            "deals.drag_hint": "Перетащите карточку в другой этап или выберите этап в списке.",
            "deals.moved": "Сделка перенесена.",
            "deals.no_pipeline": "В компании пока нет воронок.",
        },
        "en": {
            "deals.title": "Deals",
            "deals.pipeline": "Pipeline",
            "deals.show": "Show",
            "deals.count.one": "{count} deal",
            "deals.count.few": "{count} deals",
            "deals.count.many": "{count} deals",
            "deals.move_to": "Move to stage",
            "deals.move": "Move",
            "deals.lost_reason": "Reason it was lost",
            "deals.no_client": "client not available",
            "deals.empty": "No deals",
            "deals.more_in_stage": "More deals in “{stage}”",
            "deals.board": "Deals board",
            "deals.drag_hint": "Drag a card to another stage, or pick the stage from its list.",
            "deals.moved": "The deal was moved.",
            "deals.no_pipeline": "Your company has no pipeline yet.",
        },
    }
)


def plural_form(count: int, locale: str) -> str:
    """``one``, ``few`` or ``many``: the Russian rule (1, 21 сделка; 2 сделки; 5, 11 сделок);
    English has one for 1 alone (its "few" and "many" texts are the same)."""
    if locale != "ru":
        return "one" if count == 1 else "many"
    if count % 10 == 1 and count % 100 != 11:
        return "one"
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return "few"
    return "many"


def _id(raw: Any) -> int | None:
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if 1 <= value <= MAX_ID else None


class DealsBoardPages(Controller):
    path = "/{company:str}/deals"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def board(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "deals", "read", "deals")
        return await _board_page(console, _id(request.query_params.get("pipeline_id")))

    @post("/{deal_id:int}/move", opt=PUBLIC)
    async def move(
        self, request: Request[Any, Any, Any], company: FromPath[str], deal_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "deals", "update", "deals")
        if _id(deal_id) is None:
            raise NotFound(f"There is no deal {deal_id}.")
        form = {key: str(value) for key, value in (await request.form()).items()}
        pipeline_id = _id(form.get("pipeline_id"))
        try:
            async with tenant_scope(console.tenant):
                stage_id = _id(form.get("stage_id"))
                if stage_id is None:
                    raise invalid("stage_id", "no such stage")
                stages = {stage["id"]: stage for pipeline in await list_pipelines() for stage in pipeline["stages"]}
                stage = stages.get(stage_id)
                # The reason box is on every card; it counts only for a lost stage, as the API wants.
                reason = form.get("lost_reason", "").strip() or None
                move = DealMove(stage_id=stage_id, lost_reason=reason if stage and stage["kind"] == "lost" else None)
                moved = await move_deal(console.user, deal_id, move, origin=console.origin())
        except InvalidInput as problem:
            errors = {deal_id: FieldErrors.of(console, problem.errors)}
            return await _board_page(
                console, pipeline_id, errors=errors, typed={deal_id: form}, status_code=422, request=request
            )
        if is_htmx(request):
            return await _board_page(console, moved["pipeline_id"], request=request)
        return redirect(console, request, console.url(f"/deals?pipeline_id={moved['pipeline_id']}#deal-{deal_id}"))

    @get("/stages/{stage_id:int}", opt=PUBLIC)
    async def stage_page(
        self, request: Request[Any, Any, Any], company: FromPath[str], stage_id: FromPath[int]
    ) -> Response[str]:
        """The next cards of one column ("More"): rows for htmx, a page of their own without it."""
        console = await open_console(request, company)
        require(console, "deals", "read", "deals")
        cursor = request.query_params.get("cursor") or None
        async with tenant_scope(console.tenant):
            pipelines = await list_pipelines()
            found = [
                (pipeline, stage) for pipeline in pipelines for stage in pipeline["stages"] if stage["id"] == stage_id
            ]
            if not found:
                raise NotFound(f"There is no stage {stage_id}.")
            pipeline, stage = found[0]
            cards, after = await stage_cards(console.user, stage_id, cursor, CARDS_PER_COLUMN)
        column = BoardColumn(
            stage_id=stage["id"],
            key=stage["key"],
            names=stage["names"],
            kind=stage["kind"],
            probability=stage["probability"],
            deals=0,
            figures=[],
            cards=cards,
            next_cursor=after,
        )
        context = _context(console, pipelines, pipeline, [column])
        if is_htmx(request) and not request.headers.get("hx-history-restore-request"):
            return render(console, "deals_cards.html", column=column, **context)
        return render(console, "deals_stage.html", column=column, **context)


def _context(
    console: Console,
    pipelines: list[dict[str, Any]],
    pipeline: dict[str, Any] | None,
    columns: list[BoardColumn],
    *,
    errors: dict[int, FieldErrors] | None = None,
    typed: dict[int, dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "pipelines": pipelines,
        "pipeline": pipeline,
        "columns": columns,
        "options": (options := _stage_options(console, pipeline, columns)),
        "options_html": _options_html(options),
        "zone": zone_of(console.user.timezone),
        "deal_count": lambda count: console.texts(
            f"deals.count.{plural_form(count, console.texts.locale)}", count=count
        ),
        "may_move": console.may("deals", "update", "deals"),
        "may_open_client": console.may("clients", "read", "clients"),
        "errors": errors or {},
        "typed": typed or {},
    }


def _stage_options(
    console: Console, pipeline: dict[str, Any] | None, columns: list[BoardColumn]
) -> dict[int, list[tuple[str, str, str, bool]]]:
    """Per column, the stages a card may move to as (value, kind, label, chosen): worked
    out once per column, not once per card — a board shows hundreds of cards."""
    stages = pipeline["stages"] if pipeline else []
    labels = [
        (str(stage["id"]), stage["kind"], stage["names"].get(console.texts.locale) or stage["key"]) for stage in stages
    ]
    return {
        column.stage_id: [(value, kind, label, value == str(column.stage_id)) for value, kind, label in labels]
        for column in columns
    }


def _options_html(options: dict[int, list[tuple[str, str, str, bool]]]) -> dict[int, Markup]:
    """Per column, its cards' ``<option>`` list as HTML, built once: rendering it per card in
    the template was most of a 200-card board's time (every label escaped, every option a
    loop step)."""
    return {
        stage_id: Markup("").join(
            Markup('<option value="{}" data-kind="{}"{}>{}</option>').format(
                value, kind, Markup(" selected") if chosen else "", label
            )
            for value, kind, label, chosen in choices
        )
        for stage_id, choices in options.items()
    }


async def _board_page(
    console: Console,
    pipeline_id: int | None,
    *,
    errors: dict[int, FieldErrors] | None = None,
    typed: dict[int, dict[str, str]] | None = None,
    status_code: int = 200,
    request: Request[Any, Any, Any] | None = None,
) -> Response[str]:
    """The board of ``pipeline_id`` (the first pipeline when it is None or unknown); for an
    htmx move, the board alone."""
    async with tenant_scope(console.tenant):
        pipelines = await list_pipelines()
        pipeline = next((p for p in pipelines if p["id"] == pipeline_id), pipelines[0] if pipelines else None)
        columns = await deals_board(console.user, pipeline["id"], CARDS_PER_COLUMN) if pipeline else []
    context = _context(console, pipelines, pipeline, columns, errors=errors, typed=typed)
    if request is not None and is_htmx(request):
        return render(console, "deals_board_part.html", status_code=status_code, **context)
    return render(console, "deals_board.html", status_code=status_code, **context)


CONTROLLERS: list[type] = [DealsBoardPages]
