"""The search API under /api/v1."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from crm.platform.auth import Principal
from crm.platform.errors import FieldError, InvalidInput
from crm.platform.security import AUTHENTICATED
from crm.tenants.search.schemas import SearchHit, SearchResults
from crm.tenants.search.services import search

MIN_QUERY = 2
MAX_QUERY = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 50

Query = Annotated[str, QueryParameter(description="A name, title, phone (any format), e-mail or tax id")]
SearchLimit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Hits to return (1–50)")]


class SearchController(Controller):
    path = "/api/v1/search"
    tags = ["search"]

    # Any signed-in user may search; each entity's part is filtered by the user's read
    # scope on it (a role without clients.read simply finds no clients).
    @get(
        "/",
        opt=AUTHENTICATED,
        operation_id="search",
        summary="Find clients, deals and tasks, best match first",
        description="Exact phone (any format), e-mail or tax id first, then names and titles by similarity "
        "(any case, ё = е). Only records you may read.",
    )
    async def find(
        self, principal: NamedDependency[Principal], q: Query, limit: SearchLimit = DEFAULT_LIMIT
    ) -> SearchResults:
        text = " ".join(q.split())
        if not MIN_QUERY <= len(text) <= MAX_QUERY:
            raise InvalidInput(
                "The search text is too short or too long.",
                errors=[FieldError("q", f"must be {MIN_QUERY} to {MAX_QUERY} characters")],
            )
        hits = await search(principal, text, limit)
        return SearchResults(
            items=[SearchHit(type=h.type, id=h.id, title=h.title, subtitle=h.subtitle, score=h.score) for h in hits],
            q=text,
        )


CONTROLLERS: list[type[Controller]] = [SearchController]
