"""The deals API under /api/v1: pipelines with their stages, deals, moves and stage history.

Everything here is the edition's ``deals`` module (402 without it)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput, NotFound
from crm.platform.listing import (
    DEFAULT_LIMIT,
    MAX_ID,
    Cursor,
    IdFilter,
    Limit,
    ListSpec,
    Sort,
    escape_like,
    page_of,
    page_query,
)
from crm.platform.security import origin_of, permission, requires_module
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
from crm.tenants.deals.schemas import (
    DealCreate,
    DealMove,
    DealPage,
    DealRead,
    DealUpdate,
    PipelineCreate,
    PipelineList,
    PipelineRead,
    PipelineUpdate,
    StageChangePage,
    StageChangeRead,
    StageCreate,
    StageRead,
    StageUpdate,
)
from crm.tenants.deals.services import (
    OWNERS,
    READ_COLUMNS,
    create_deal,
    deal_in_scope,
    delete_deal,
    move_deal,
    update_deal,
)
from crm.tenants.deals.tables import Deal, DealStageChange
from crm.tenants.users.scopes import records_in_scope

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]

DEAL_LIST = ListSpec(
    sortable={
        "id": Deal.id,
        "created_at": Deal.created_at,
        "amount": Deal.amount,
        "stage_changed_at": Deal.stage_changed_at,
        "title": Deal.title,
    }
)
HISTORY_LIST = ListSpec(
    sortable={"id": DealStageChange.id, "changed_at": DealStageChange.changed_at}, default_sort="changed_at"
)


async def _pipeline(principal: Principal, pipeline_id: int) -> PipelineRead:
    rows = await read_in_tenant(principal.tenant, lambda: list_pipelines(pipeline_id))
    if not rows:
        raise NotFound(f"There is no pipeline {pipeline_id}.")
    return msgspec.convert(rows[0], PipelineRead)


class PipelinesController(Controller):
    path = "/api/v1/pipelines"
    tags = ["pipelines"]
    guards = [requires_module("deals")]

    @get("/", opt=permission("deals", "read"), operation_id="listPipelines", summary="Pipelines with their stages")
    async def list_all(self, principal: NamedDependency[Principal]) -> PipelineList:
        rows = await read_in_tenant(principal.tenant, list_pipelines)
        return PipelineList(items=msgspec.convert(rows, list[PipelineRead]))

    @post(
        "/",
        opt=permission("settings", "update"),
        status_code=HTTP_201_CREATED,
        operation_id="createPipeline",
        summary="Add a pipeline with its stages (at least one open, one won, one lost)",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[PipelineCreate]
    ) -> PipelineRead:
        pipeline_id = await create_pipeline(principal, data, origin=origin_of(request))
        return await _pipeline(principal, pipeline_id)

    @patch(
        "/{pipeline_id:int}",
        opt=permission("settings", "update"),
        operation_id="updatePipeline",
        summary="Rename a pipeline or move it to another position",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        pipeline_id: Id,
        data: JSONBody[PipelineUpdate],
    ) -> PipelineRead:
        await update_pipeline(principal, pipeline_id, data, origin=origin_of(request))
        return await _pipeline(principal, pipeline_id)

    @post(
        "/{pipeline_id:int}/stages",
        opt=permission("settings", "update"),
        status_code=HTTP_201_CREATED,
        operation_id="addStage",
        summary="Add a stage to a pipeline at a position",
    )
    async def add_stage(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        pipeline_id: Id,
        data: JSONBody[StageCreate],
    ) -> StageRead:
        stage_id = await add_stage(principal, pipeline_id, data, origin=origin_of(request))
        pipeline = await _pipeline(principal, pipeline_id)
        return next(stage for stage in pipeline.stages if stage.id == stage_id)

    @patch(
        "/{pipeline_id:int}/stages/{stage_id:int}",
        opt=permission("settings", "update"),
        operation_id="updateStage",
        summary="Rename a stage, change its probability or kind, or move it",
    )
    async def update_stage(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        pipeline_id: Id,
        stage_id: Id,
        data: JSONBody[StageUpdate],
    ) -> PipelineRead:
        await update_stage(principal, pipeline_id, stage_id, data, origin=origin_of(request))
        return await _pipeline(principal, pipeline_id)

    @delete(
        "/{pipeline_id:int}/stages/{stage_id:int}",
        opt=permission("settings", "update"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteStage",
        summary="Remove a stage no deal sits in",
    )
    async def delete_stage(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], pipeline_id: Id, stage_id: Id
    ) -> None:
        await delete_stage(principal, pipeline_id, stage_id, origin=origin_of(request))


class DealsController(Controller):
    path = "/api/v1/deals"
    tags = ["deals"]
    guards = [requires_module("deals")]

    @get(
        "/",
        opt=permission("deals", "read"),
        operation_id="listDeals",
        summary="Deals you may see",
        description=(
            "Filters: client_id, pipeline_id, stage_id, status (open, won, lost), responsible_id, "
            "amount_from/amount_to, expected_close_on_from/expected_close_on_to. `q` matches the title. "
            "Sort by id, created_at, amount, stage_changed_at or title."
        ),
    )
    async def list_deals(
        self,
        principal: NamedDependency[Principal],
        client_id: IdFilter = None,
        pipeline_id: IdFilter = None,
        stage_id: IdFilter = None,
        status: FromQuery[str | None] = None,
        responsible_id: IdFilter = None,
        q: FromQuery[str | None] = None,
        amount_from: FromQuery[Decimal | None] = None,
        amount_to: FromQuery[Decimal | None] = None,
        expected_close_on_from: FromQuery[date | None] = None,
        expected_close_on_to: FromQuery[date | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> DealPage:
        ordering = DEAL_LIST.ordering(sort)
        errors = []
        if status is not None and status not in STAGE_KINDS:
            errors.append(FieldError("status", f"must be one of {', '.join(STAGE_KINDS)}"))
        for name, bound in (("amount_from", amount_from), ("amount_to", amount_to)):
            if bound is not None and not bound.is_finite():
                errors.append(FieldError(name, "must be a number"))
        if errors:
            raise InvalidInput("The filters are not valid.", errors=errors)

        async def page() -> list[dict[str, Any]]:
            visible = await records_in_scope(principal, "deals", "read", *OWNERS)
            query = Deal.select(*READ_COLUMNS).where(visible).output(load_json=True)
            equal = (
                (Deal.client_id, client_id),
                (Deal.pipeline_id, pipeline_id),
                (Deal.stage_id, stage_id),
                (Deal.status, status),
                (Deal.responsible_id, responsible_id),
            )
            for column, wanted in equal:
                if wanted is not None:
                    query = query.where(column == wanted)
            if q and q.strip():
                query = query.where(Deal.title.ilike(f"%{escape_like(q.strip())}%"))
            if amount_from is not None:
                query = query.where(Deal.amount >= amount_from)
            if amount_to is not None:
                query = query.where(Deal.amount < amount_to)
            if expected_close_on_from is not None:
                query = query.where(Deal.expected_close_on >= expected_close_on_from)
            if expected_close_on_to is not None:
                query = query.where(Deal.expected_close_on < expected_close_on_to)
            return await page_query(query, ordering, cursor, limit).run()

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return DealPage(items=msgspec.convert(rows, list[DealRead]), next_cursor=after)

    @post(
        "/",
        opt=permission("deals", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createDeal",
        summary="Add a deal (default: first pipeline, its first open stage)",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[DealCreate]
    ) -> DealRead:
        return msgspec.convert(await create_deal(principal, data, origin=origin_of(request)), DealRead)

    @get("/{deal_id:int}", opt=permission("deals", "read"), operation_id="getDeal", summary="One deal you may see")
    async def get_deal(self, principal: NamedDependency[Principal], deal_id: Id) -> DealRead:
        row = await read_in_tenant(principal.tenant, lambda: deal_in_scope(principal, deal_id, "read"))
        return msgspec.convert(row, DealRead)

    @patch(
        "/{deal_id:int}",
        opt=permission("deals", "update"),
        operation_id="updateDeal",
        summary="Change a deal's fields (stages change through /move)",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        deal_id: Id,
        data: JSONBody[DealUpdate],
    ) -> DealRead:
        return msgspec.convert(await update_deal(principal, deal_id, data, origin=origin_of(request)), DealRead)

    @delete(
        "/{deal_id:int}",
        opt=permission("deals", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteDeal",
        summary="Delete a deal and its stage history",
    )
    async def delete_deal(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], deal_id: Id
    ) -> None:
        await delete_deal(principal, deal_id, origin=origin_of(request))

    @post(
        "/{deal_id:int}/move",
        opt=permission("deals", "update"),
        status_code=HTTP_200_OK,
        operation_id="moveDeal",
        summary="Move a deal to a stage; recorded in its stage history",
    )
    async def move(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        deal_id: Id,
        data: JSONBody[DealMove],
    ) -> DealRead:
        return msgspec.convert(await move_deal(principal, deal_id, data, origin=origin_of(request)), DealRead)

    @get(
        "/{deal_id:int}/stage-history",
        opt=permission("deals", "read"),
        operation_id="dealStageHistory",
        summary="Every stage change of a deal with its time, oldest first",
        description="Sort by changed_at (default) or id.",
    )
    async def stage_history(
        self,
        principal: NamedDependency[Principal],
        deal_id: Id,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> StageChangePage:
        ordering = HISTORY_LIST.ordering(sort)

        async def page() -> list[dict[str, Any]]:
            await deal_in_scope(principal, deal_id, "read")
            query = DealStageChange.select(
                DealStageChange.id,
                DealStageChange.from_stage_id,
                DealStageChange.to_stage_id,
                DealStageChange.changed_at,
                DealStageChange.actor_id,
            ).where(DealStageChange.deal_id == deal_id)
            return await page_query(query, ordering, cursor, limit).run()

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return StageChangePage(items=msgspec.convert(rows, list[StageChangeRead]), next_cursor=after)


CONTROLLERS: list[type[Controller]] = [PipelinesController, DealsController]
