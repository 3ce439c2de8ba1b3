"""The notifications API under /api/v1: the caller's list, marking read, their settings."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK

from crm.platform.auth import Principal
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, Limit, Sort, page_of
from crm.platform.security import AUTHENTICATED, origin_of
from crm.platform.tenancy import read_in_tenant, tenant_scope
from crm.tenants.notifications.schemas import (
    MarkedRead,
    NotificationPage,
    NotificationRead,
    NotificationSettings,
    NotificationSettingsUpdate,
)
from crm.tenants.notifications.services import (
    NOTIFICATION_LIST,
    mark_all_read,
    mark_read,
    notification_page,
    notification_read,
    notification_settings,
    unread_count,
    update_notification_settings,
)

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


class NotificationsController(Controller):
    path = "/api/v1/notifications"
    tags = ["notifications"]

    @get(
        "/",
        opt=AUTHENTICATED,
        operation_id="listNotifications",
        summary="Your notifications, newest first, with the unread count",
        description="`unread=true|false` filters, `kind=task_reminder|digest|birthday`; sort by id (default -id) "
        "or created_at.",
    )
    async def list_notifications(
        self,
        principal: NamedDependency[Principal],
        unread: FromQuery[bool | None] = None,
        kind: FromQuery[str | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> NotificationPage:
        ordering = NOTIFICATION_LIST.ordering(sort)

        async def page() -> NotificationPage:
            rows = await notification_page(principal, ordering, cursor, limit, unread=unread, kind=kind)
            items, after = page_of(rows, ordering, limit)
            return NotificationPage(
                items=[notification_read(row) for row in items], next_cursor=after, unread=await unread_count(principal)
            )

        return await read_in_tenant(principal.tenant, page)

    @post(
        "/{notification_id:int}/read",
        opt=AUTHENTICATED,
        status_code=HTTP_200_OK,
        operation_id="markNotificationRead",
        summary="Mark one of your notifications read",
    )
    async def read_one(self, principal: NamedDependency[Principal], notification_id: Id) -> NotificationRead:
        async with tenant_scope(principal.tenant):
            return notification_read(await mark_read(principal, notification_id))

    @post(
        "/read-all",
        opt=AUTHENTICATED,
        status_code=HTTP_200_OK,
        operation_id="markAllNotificationsRead",
        summary="Mark all your notifications read",
    )
    async def read_all(self, principal: NamedDependency[Principal]) -> MarkedRead:
        async with tenant_scope(principal.tenant):
            return MarkedRead(marked=await mark_all_read(principal))


class NotificationSettingsController(Controller):
    path = "/api/v1/me/notification-settings"
    tags = ["notifications"]

    @get("/", opt=AUTHENTICATED, operation_id="getNotificationSettings", summary="Your reminder defaults and channels")
    async def show(self, principal: NamedDependency[Principal]) -> NotificationSettings:
        async def read() -> NotificationSettings:
            return await notification_settings(principal)

        return await read_in_tenant(principal.tenant, read)

    @put(
        "/",
        opt=AUTHENTICATED,
        operation_id="updateNotificationSettings",
        summary="Change your reminder defaults and channels",
        description='`{"reminder_minutes": [15, 60], "channels": ["email", "telegram"]}`; fields left out stay.',
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[NotificationSettingsUpdate],
    ) -> NotificationSettings:
        async with tenant_scope(principal.tenant):
            return await update_notification_settings(principal, data, origin=origin_of(request))


CONTROLLERS: list[type[Controller]] = [NotificationsController, NotificationSettingsController]
