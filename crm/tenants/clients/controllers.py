"""The clients API under /api/v1 (and the company settings, which decide how phones read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.listing import DEFAULT_LIMIT, MAX_ID, Cursor, IdFilter, Limit, Sort
from crm.platform.security import origin_of, permission
from crm.platform.tenancy import read_in_tenant
from crm.tenants.clients._listing import CLIENT_LIST, ClientFilters, list_clients
from crm.tenants.clients._read import load_client
from crm.tenants.clients.merge import merge_clients
from crm.tenants.clients.schemas import (
    ClientCreate,
    ClientPage,
    ClientRead,
    ClientUpdate,
    CompanyLink,
    MergeRequest,
)
from crm.tenants.clients.services import create_client, delete_client, link_company, unlink_company, update_client
from crm.tenants.configuration.company_api import CompanySettingsController

Id = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Force = Annotated[
    bool,
    QueryParameter(description="Save even if another client has the same phone, e-mail or tax id"),
]
CUSTOM_PREFIX = "custom."


class ClientsController(Controller):
    path = "/api/v1/clients"
    tags = ["clients"]

    @post(
        "/",
        opt=permission("clients", "create"),
        status_code=HTTP_201_CREATED,
        operation_id="createClient",
        summary="Add a company or a person",
        description="Phones are read in the company's region and stored as E.164. A client with the same phone, "
        "e-mail or tax id answers 409 with `duplicates`, unless `?force=true`.",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[ClientCreate],
        force: Force = False,
    ) -> ClientRead:
        return await create_client(principal, data, origin=origin_of(request), force=force)

    @get(
        "/",
        opt=permission("clients", "read"),
        operation_id="listClients",
        summary="Clients you may see",
        description="Sort by id, name, created_at or updated_at. `q` matches the name (any case, ё = е), a phone "
        "in any format or an e-mail. Filter by kind, status, source, responsible_id, tag, created_at_from/_to, "
        "and custom fields as `custom.<key>=<value>`.",
    )
    async def list_clients(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        q: FromQuery[str | None] = None,
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        source: FromQuery[str | None] = None,
        responsible_id: IdFilter = None,
        tag: FromQuery[str | None] = None,
        created_at_from: FromQuery[datetime | None] = None,
        created_at_to: FromQuery[datetime | None] = None,
        sort: Sort = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> ClientPage:
        naive = [
            FieldError(name, "must carry a UTC offset")
            for name, value in (("created_at_from", created_at_from), ("created_at_to", created_at_to))
            if value is not None and value.tzinfo is None
        ]
        if naive:
            raise InvalidInput("Times must carry a UTC offset.", errors=naive)
        custom = {
            name.removeprefix(CUSTOM_PREFIX): value
            for name, value in request.query_params.items()
            if name.startswith(CUSTOM_PREFIX)
        }
        filters = ClientFilters(
            kind=kind,
            status=status,
            source=source,
            responsible_id=responsible_id,
            tag=tag,
            q=q,
            created_at_from=created_at_from,
            created_at_to=created_at_to,
            custom=custom,
        )
        items, after = await list_clients(principal, filters, CLIENT_LIST.ordering(sort), cursor, limit)
        return ClientPage(items=items, next_cursor=after)

    @get("/{client_id:int}", opt=permission("clients", "read"), operation_id="getClient", summary="One client")
    async def get_client(self, principal: NamedDependency[Principal], client_id: Id) -> ClientRead:
        async def one() -> ClientRead:
            return await load_client(principal, client_id)

        return await read_in_tenant(principal.tenant, one)

    @patch(
        "/{client_id:int}",
        opt=permission("clients", "update"),
        operation_id="updateClient",
        summary="Change a client's fields",
        description="Fields left out stay as they are; `custom` is merged key by key (`null` removes a value).",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        client_id: Id,
        data: JSONBody[ClientUpdate],
        force: Force = False,
    ) -> ClientRead:
        return await update_client(principal, client_id, data, origin=origin_of(request), force=force)

    @delete(
        "/{client_id:int}",
        opt=permission("clients", "delete"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="deleteClient",
        summary="Delete a client that has no deals",
    )
    async def remove(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal], client_id: Id
    ) -> None:
        await delete_client(principal, client_id, origin=origin_of(request))

    @post(
        "/{person_id:int}/companies",
        opt=permission("clients", "update"),
        status_code=HTTP_200_OK,
        operation_id="linkClientCompany",
        summary="Record that a person works at a company",
    )
    async def link(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        person_id: Id,
        data: JSONBody[CompanyLink],
    ) -> ClientRead:
        return await link_company(principal, person_id, data.company_id, data.position, origin=origin_of(request))

    @delete(
        "/{person_id:int}/companies/{company_id:int}",
        opt=permission("clients", "update"),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="unlinkClientCompany",
        summary="A person no longer works at a company",
    )
    async def unlink(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        person_id: Id,
        company_id: Id,
    ) -> None:
        await unlink_company(principal, person_id, company_id, origin=origin_of(request))

    @post(
        "/{client_id:int}/merge",
        opt=permission("clients", "update"),
        status_code=HTTP_200_OK,
        operation_id="mergeClients",
        summary="Fold a duplicate into this client",
        description="Moves the other client's deals, activities, tasks, leads and links here, joins their contacts "
        "and tags, fills this client's empty fields, then deletes the other (needs clients.update on both and "
        "clients.delete on the other).",
    )
    async def merge(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        client_id: Id,
        data: JSONBody[MergeRequest],
    ) -> ClientRead:
        return await merge_clients(principal, client_id, data.other_id, origin=origin_of(request))


CONTROLLERS: list[type[Controller]] = [ClientsController, CompanySettingsController]
