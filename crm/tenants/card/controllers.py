"""``GET /api/v1/clients/{id}/card``: what the console and the bot show for a client."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from crm.platform.auth import Principal
from crm.platform.listing import MAX_ID
from crm.platform.security import permission
from crm.tenants.card.schemas import ClientCard
from crm.tenants.card.services import client_card


class ClientCardController(Controller):
    path = "/api/v1/clients/{client_id:int}/card"
    tags = ["clients"]

    @get(
        "/",
        opt=permission("clients", "read"),
        operation_id="getClientCard",
        summary="A client with contacts, open deals, latest activities, open tasks and figures",
    )
    async def card(
        self, principal: NamedDependency[Principal], client_id: Annotated[int, PathParameter(ge=1, le=MAX_ID)]
    ) -> ClientCard:
        return await client_card(principal, client_id)


CONTROLLERS = [ClientCardController]
