"""The activities API under /api/v1: calls, meetings, notes and e-mails on clients, and
the company's call outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, IdFilter, Limit, ListSpec, Sort, page_of, page_query
from crm.platform.security import origin_of, permission
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.activities.attachments import load_attachment, with_attachments
from crm.tenants.activities.outcomes import CallOutcomesController
from crm.tenants.activities.schemas import ActivityCreate, ActivityPage, ActivityRead, ActivityUpdate
from crm.tenants.activities.services import (
    ACTIVITY_COLUMNS,
    activities_in_scope,
    create_activity,
    delete_activity,
    load_activity,
    update_activity,
)
from crm.tenants.activities.tables import Activity

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
ACTIVITY_LIST = ListSpec(
    sortable={"occurred_at": Activity.occurred_at, "created_at": Activity.created_at, "id": Activity.id},
    default_sort="-occurred_at",
)


class ActivitiesController(Controller):
    path = "/api/v1/activities"
    tags = ["activities"]

    @post(
        "/",
        opt=permission("activities", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createActivity",
        summary="Log a call, meeting, note or e-mail on a client (with its next step)",
        description="With the company's require_next_step on, a completed call whose outcome requires it, "
        "or a completed meeting, needs `next_step`; the follow-up task is created with it.",
    )
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], data: JSONBody[ActivityCreate]
    ) -> ActivityRead:
        async with tenant_scope(principal.tenant):
            row = await create_activity(principal, data, origin=origin_of(request))
        return msgspec.convert(row, ActivityRead)

    @get(
        "/",
        opt=permission("activities", "read"),
        operation_id="listActivities",
        summary="Activities you may see, on clients you may read",
        description="Sort by occurred_at (default: newest first), created_at or id.",
    )
    async def list_activities(
        self,
        principal: NamedDependency[Principal],
        client_id: IdFilter = None,
        deal_id: IdFilter = None,
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        author_id: IdFilter = None,
        occurred_at_from: FromQuery[datetime | None] = None,
        occurred_at_to: FromQuery[datetime | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> ActivityPage:
        ordering = ACTIVITY_LIST.ordering(sort)
        bounds = {"occurred_at_from": occurred_at_from, "occurred_at_to": occurred_at_to}
        naive = [
            FieldError(name, "must carry a UTC offset")
            for name, value in bounds.items()
            if value and value.utcoffset() is None
        ]
        if naive:
            raise InvalidInput("The activity list has invalid parameters.", errors=naive)

        async def page() -> list[dict[str, Any]]:
            query = Activity.select(*ACTIVITY_COLUMNS).where(await activities_in_scope(principal, "read"))
            for column, wanted in (
                (Activity.client_id, client_id),
                (Activity.deal_id, deal_id),
                (Activity.kind, kind),
                (Activity.status, status),
                (Activity.author_id, author_id),
            ):
                if wanted is not None:
                    query = query.where(column == wanted)
            if occurred_at_from is not None:
                query = query.where(Activity.occurred_at >= occurred_at_from)
            if occurred_at_to is not None:
                query = query.where(Activity.occurred_at < occurred_at_to)
            rows: list[dict[str, Any]] = await page_query(query, ordering, cursor, limit).run()
            return await with_attachments(rows)

        rows, after = page_of(await read_in_tenant(principal.tenant, page), ordering, limit)
        return ActivityPage(items=msgspec.convert(rows, list[ActivityRead]), next_cursor=after)

    @get(
        "/{activity_id:int}",
        opt=permission("activities", "read"),
        operation_id="getActivity",
        summary="One activity you may see",
    )
    async def get_activity(self, principal: NamedDependency[Principal], activity_id: Id) -> ActivityRead:
        async def one() -> dict[str, Any]:
            [row] = await with_attachments(
                [await load_activity(activity_id, await activities_in_scope(principal, "read"))]
            )
            return row

        return msgspec.convert(await read_in_tenant(principal.tenant, one), ActivityRead)

    @get(
        "/{activity_id:int}/attachments/{attachment_id:int}",
        opt=permission("activities", "read"),
        operation_id="getActivityAttachment",
        summary="The bytes of a file kept with an activity you may see (e.g. a call's voice note)",
        description="Answered with the file's own content type; 404 when the activity is not one you may see.",
        media_type="application/octet-stream",
    )
    async def get_attachment(
        self, principal: NamedDependency[Principal], activity_id: Id, attachment_id: Id
    ) -> Response[bytes]:
        async def one() -> dict[str, Any]:
            # Found through the activity first: the same rights (and 404) as reading it.
            await load_activity(activity_id, await activities_in_scope(principal, "read"))
            return await load_attachment(activity_id, attachment_id)

        row = await read_in_tenant(principal.tenant, one)
        return Response(
            bytes(row["content"]),
            media_type=row["mime_type"],
            headers={
                "Content-Disposition": f'attachment; filename="activity-{activity_id}-{attachment_id}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    @patch(
        "/{activity_id:int}",
        opt=permission("activities", "update"),
        operation_id="updateActivity",
        summary="Change an activity, e.g. log the result of a planned call",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        activity_id: Id,
        data: JSONBody[ActivityUpdate],
    ) -> ActivityRead:
        async with tenant_scope(principal.tenant):
            [row] = await with_attachments(
                [await update_activity(principal, activity_id, data, origin=origin_of(request))]
            )
        return msgspec.convert(row, ActivityRead)

    @delete(
        "/{activity_id:int}",
        opt=permission("activities", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteActivity",
        summary="Delete an activity",
    )
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], activity_id: Id
    ) -> None:
        async with tenant_scope(principal.tenant):
            await delete_activity(principal, activity_id, origin=origin_of(request))


CONTROLLERS: list[type[Controller]] = [ActivitiesController, CallOutcomesController]
