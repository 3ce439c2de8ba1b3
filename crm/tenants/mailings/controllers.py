"""The mailings API under /api/v1/mailings (module ``mailings``; rights: the ``mailings`` entity)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, Limit, Sort
from crm.platform.security import origin_of, permission, requires_module
from crm.tenants.mailings import lists, services
from crm.tenants.mailings.schemas import (
    MailingCreate,
    MailingPage,
    MailingRead,
    Preview,
    PreviewRequest,
    ScheduleRequest,
    SegmentCount,
    SegmentFilters,
    SegmentPage,
    SegmentRead,
    SegmentWrite,
    TemplatePage,
    TemplateRead,
    TemplateWrite,
    TestSent,
)
from crm.tenants.mailings.unsubscribe import UnsubscribeController

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
# ``state`` is a name Litestar reserves for the application state: the filter takes it as an alias.
StateFilter = Annotated[str | None, QueryParameter(name="state", description="draft, scheduled, sending, …")]


class SegmentsController(Controller):
    path = "/api/v1/mailings/segments"
    tags = ["mailings"]
    guards = [requires_module("mailings")]

    @get(
        "/",
        opt=permission("mailings", "read"),
        operation_id="listSegments",
        summary="Saved client segments",
        description="Sort by id (default), name, created_at or updated_at. `q` matches the name.",
    )
    async def list_segments(
        self,
        principal: NamedDependency[Principal],
        q: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> SegmentPage:
        return await lists.list_segments(principal, sort=sort, cursor=cursor, limit=limit, q=q)

    @post(
        "/",
        opt=permission("mailings", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createSegment",
        summary="Save a segment: a filter over clients evaluated when a mailing starts",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[SegmentWrite]
    ) -> SegmentRead:
        return await services.save_segment(principal, data, origin=origin_of(request))

    @post(
        "/count",
        opt=permission("mailings", "read"),
        status_code=HTTP_200_OK,
        operation_id="countSegmentFilters",
        summary="How many clients filters match now (before saving them)",
    )
    async def count_filters(
        self, principal: NamedDependency[Principal], data: JSONBody[SegmentFilters]
    ) -> SegmentCount:
        return await services.count_filters(principal, data)

    @get("/{segment_id:int}", opt=permission("mailings", "read"), operation_id="getSegment", summary="One segment")
    async def get_segment(self, principal: NamedDependency[Principal], segment_id: Id) -> SegmentRead:
        return await services.get_segment(principal, segment_id)

    @get(
        "/{segment_id:int}/count",
        opt=permission("mailings", "read"),
        operation_id="countSegment",
        summary="The live count of a segment's recipients",
    )
    async def count(self, principal: NamedDependency[Principal], segment_id: Id) -> SegmentCount:
        segment = await services.get_segment(principal, segment_id)
        return await services.count_filters(principal, segment.filters)

    @put("/{segment_id:int}", opt=permission("mailings", "update"), operation_id="replaceSegment", summary="Change")
    async def replace(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        segment_id: Id,
        data: JSONBody[SegmentWrite],
    ) -> SegmentRead:
        return await services.save_segment(principal, data, origin=origin_of(request), segment_id=segment_id)

    @delete(
        "/{segment_id:int}",
        opt=permission("mailings", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteSegment",
        summary="Delete a segment no mailing uses",
    )
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], segment_id: Id
    ) -> None:
        await services.delete_segment(principal, segment_id, origin=origin_of(request))


class TemplatesController(Controller):
    path = "/api/v1/mailings/templates"
    tags = ["mailings"]
    guards = [requires_module("mailings")]

    @get(
        "/",
        opt=permission("mailings", "read"),
        operation_id="listMailTemplates",
        summary="Mailing templates",
        description="Sort by id (default), name, created_at or updated_at. `q` matches the name.",
    )
    async def list_templates(
        self,
        principal: NamedDependency[Principal],
        q: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> TemplatePage:
        return await lists.list_templates(principal, sort=sort, cursor=cursor, limit=limit, q=q)

    @post(
        "/",
        opt=permission("mailings", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createMailTemplate",
        summary="Save a template (checked now: unknown variables or unsafe constructs answer 422)",
        description="Variables: client.name, client.first_name, client.email, client.kind, company.name, "
        "responsible.name, responsible.email, unsubscribe_url.",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[TemplateWrite]
    ) -> TemplateRead:
        return await services.save_template(principal, data, origin=origin_of(request))

    @get("/{template_id:int}", opt=permission("mailings", "read"), operation_id="getMailTemplate", summary="One")
    async def get_template(self, principal: NamedDependency[Principal], template_id: Id) -> TemplateRead:
        return await services.get_template(principal, template_id)

    @put(
        "/{template_id:int}", opt=permission("mailings", "update"), operation_id="replaceMailTemplate", summary="Change"
    )
    async def replace(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        template_id: Id,
        data: JSONBody[TemplateWrite],
    ) -> TemplateRead:
        return await services.save_template(principal, data, origin=origin_of(request), template_id=template_id)

    @delete(
        "/{template_id:int}",
        opt=permission("mailings", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteMailTemplate",
        summary="Delete a template no mailing uses",
    )
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], template_id: Id
    ) -> None:
        await services.delete_template(principal, template_id, origin=origin_of(request))

    @post(
        "/{template_id:int}/preview",
        opt=permission("mailings", "read"),
        status_code=HTTP_200_OK,
        operation_id="previewMailTemplate",
        summary="The template rendered for one client",
    )
    async def preview(
        self, principal: NamedDependency[Principal], template_id: Id, data: JSONBody[PreviewRequest]
    ) -> Preview:
        return await services.preview_template(principal, template_id, data.client_id)

    @post(
        "/{template_id:int}/test",
        opt=permission("mailings", "create"),
        status_code=HTTP_200_OK,
        operation_id="sendTestMail",
        summary="Send the template, rendered for a client, to your own address",
    )
    async def test_send(
        self, principal: NamedDependency[Principal], template_id: Id, data: JSONBody[PreviewRequest]
    ) -> TestSent:
        return await services.send_test(principal, template_id, data.client_id)


class MailingsController(Controller):
    path = "/api/v1/mailings"
    tags = ["mailings"]
    guards = [requires_module("mailings")]

    @get(
        "/",
        opt=permission("mailings", "read"),
        operation_id="listMailings",
        summary="Mailings with their progress, newest first",
        description="Filter: state. Sort by id (default `-id`), name or created_at. `q` matches the name.",
    )
    async def list_mailings(
        self,
        principal: NamedDependency[Principal],
        mailing_state: StateFilter = None,
        q: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> MailingPage:
        return await lists.list_mailings(principal, sort=sort, cursor=cursor, limit=limit, q=q, state=mailing_state)

    @post(
        "/",
        opt=permission("mailings", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createMailing",
        summary="A draft mailing of a template to a segment",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[MailingCreate]
    ) -> MailingRead:
        return await services.create_mailing(principal, data, origin=origin_of(request))

    @get(
        "/{mailing_id:int}",
        opt=permission("mailings", "read"),
        operation_id="getMailing",
        summary="One mailing with its progress (total, sent, failed, pending, cancelled)",
    )
    async def get_mailing(self, principal: NamedDependency[Principal], mailing_id: Id) -> MailingRead:
        return await services.get_mailing(principal, mailing_id)

    @post(
        "/{mailing_id:int}/schedule",
        opt=permission("mailings", "update"),
        status_code=HTTP_200_OK,
        operation_id="scheduleMailing",
        summary="Send at a time (`at`, with a UTC offset) or now; 402 past the edition's monthly letters",
    )
    async def schedule(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        mailing_id: Id,
        data: JSONBody[ScheduleRequest],
    ) -> MailingRead:
        return await services.schedule_mailing(principal, mailing_id, data.at, origin=origin_of(request))

    @post(
        "/{mailing_id:int}/cancel",
        opt=permission("mailings", "update"),
        status_code=HTTP_200_OK,
        operation_id="cancelMailing",
        summary="Stop the mailing; letters not yet handed over are not sent",
    )
    async def cancel(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], mailing_id: Id
    ) -> MailingRead:
        return await services.cancel_mailing(principal, mailing_id, origin=origin_of(request))


CONTROLLERS: list[type[Controller]] = [
    SegmentsController,
    TemplatesController,
    MailingsController,
    UnsubscribeController,
]
