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
from crm.platform.errors import NotFound
from crm.platform.listing import (
    DEFAULT_LIMIT,
    MAX_ID,
    Cursor,
    IdFilter,
    Limit,
    ListSpec,
    Sort,
    page_of,
    page_query,
)
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.tenancy import read_in_tenant
from crm.tenants.deals.listing import DEAL_LIST, DealFilters, list_deals
from crm.tenants.deals.pipelines import (
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
    create_deal,
    deal_in_scope,
    delete_deal,
    move_deal,
    update_deal,
)
from crm.tenants.deals.tables import DealStageChange

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]

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
        filters = DealFilters(
            client_id=client_id,
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            status=status,
            responsible_id=responsible_id,
            q=q,
            amount_from=amount_from,
            amount_to=amount_to,
            expected_close_on_from=expected_close_on_from,
            expected_close_on_to=expected_close_on_to,
        )
        rows, after = await list_deals(principal, filters, DEAL_LIST.ordering(sort), cursor, limit)
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
