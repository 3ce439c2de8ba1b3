"""The web forms API: ``/api/v1/web-forms`` to manage a company's forms (the settings
rights, the edition's ``webforms`` module), and — in :mod:`.web_form_capture` — the public
``/api/v1/forms/{key}`` their submissions post to."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.listing import MAX_ID
from crm.platform.security import origin_of, permission, requires_module
from crm.platform.services import services_of
from crm.tenants.leads.web_form_capture import WebFormCaptureController
from crm.tenants.leads.web_form_schemas import WebFormCreate, WebFormList, WebFormRead, WebFormUpdate
from crm.tenants.leads.web_forms import (
    MODULE,
    action_url,
    create_web_form,
    deactivate_web_form,
    list_web_forms,
    rotate_web_form_key,
    update_web_form,
)

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]


def web_form_read(state: State, row: dict[str, Any]) -> WebFormRead:
    public_url = services_of(state).settings.web.public_url
    return WebFormRead(**row, action_url=action_url(public_url, row["public_key"]))


class WebFormsController(Controller):
    path = "/api/v1/web-forms"
    tags = ["web forms"]
    guards = [requires_module(MODULE)]

    @get(
        "/",
        opt=permission("settings", "read"),
        operation_id="listWebForms",
        summary="The company's web forms, newest first",
    )
    async def list_forms(self, state: State, principal: NamedDependency[Principal]) -> WebFormList:
        return WebFormList(items=[web_form_read(state, row) for row in await list_web_forms(principal)])

    @post(
        "/",
        opt=permission("settings", "update"),
        status_code=HTTP_201_CREATED,
        operation_id="createWebForm",
        summary="Add a web form (active, with a fresh public key)",
        description=(
            "`allowed_origins`: `https://host[:port]` of the sites whose pages may post the form from a "
            "script (CORS) or from a page (the browser's Origin); empty: any site. `responsible_id`: the "
            "active user its leads go to; left out, they are unassigned."
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        state: State,
        principal: NamedDependency[Principal],
        data: JSONBody[WebFormCreate],
    ) -> WebFormRead:
        return web_form_read(state, await create_web_form(principal, data, origin=origin_of(request)))

    @patch(
        "/{form_id:int}",
        opt=permission("settings", "update"),
        operation_id="updateWebForm",
        summary="Rename a web form, change its responsible or allowed sites, switch it off or on",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        state: State,
        principal: NamedDependency[Principal],
        form_id: Id,
        data: JSONBody[WebFormUpdate],
    ) -> WebFormRead:
        row = await update_web_form(principal, form_id, data, origin=origin_of(request))
        return web_form_read(state, row)

    @delete(
        "/{form_id:int}",
        opt=permission("settings", "update"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deactivateWebForm",
        summary="Switch a web form off (its key answers 404; its leads stay)",
    )
    async def deactivate(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], form_id: Id
    ) -> None:
        await deactivate_web_form(principal, form_id, origin=origin_of(request))

    @post(
        "/{form_id:int}/rotate-key",
        opt=permission("settings", "update"),
        status_code=HTTP_200_OK,
        operation_id="rotateWebFormKey",
        summary="Give a web form a new public key; the old one answers 404 at once",
    )
    async def rotate_key(
        self, request: Request[Any, Any, Any], state: State, principal: NamedDependency[Principal], form_id: Id
    ) -> WebFormRead:
        return web_form_read(state, await rotate_web_form_key(principal, form_id, origin=origin_of(request)))


CONTROLLERS: list[type[Controller]] = [WebFormsController, WebFormCaptureController]
