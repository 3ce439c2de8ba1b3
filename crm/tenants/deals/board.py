"""The deals board of one pipeline: a column per stage with its figures and its latest
deals, the way a kanban shows them — one statement, each part within the caller's rights."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.listing import DEFAULT_LIMIT, page_of
from crm.platform.sql import compile_named
from crm.platform.tenancy import read_in_tenant, scope_connection
from crm.tenants.clients._read import clients_in_scope
from crm.tenants.clients.tables import Client
from crm.tenants.deals.listing import DEAL_LIST, DealFilters, list_deals
from crm.tenants.deals.services import OWNERS
from crm.tenants.users.scopes import records_in_scope

# Newest in the stage first: what a salesperson looks at on a board.
BOARD_ORDER = DEAL_LIST.ordering("-stage_changed_at")

# Per stage: the deals the caller may read grouped by currency (count and sum), and the
# first page of cards. The client's name comes from a sub-select of its own, so a client
# the caller may not read shows no name, and conditions written with bare column names
# ("responsible_id") resolve to one table only.
_BOARD = """
SELECT pipeline_stages.id, pipeline_stages.key, pipeline_stages.names, pipeline_stages.kind,
       pipeline_stages.probability,
    (SELECT coalesce(json_agg(json_build_object('currency', figure.currency, 'deals', figure.deals,
                                                'amount', figure.amount::text) ORDER BY figure.currency), '[]')
     FROM (SELECT deals.currency, count(*) AS deals, sum(deals.amount) AS amount
           FROM deals WHERE deals.stage_id = pipeline_stages.id AND ({visible})
           GROUP BY deals.currency) figure) AS figures,
    (SELECT coalesce(json_agg(json_build_object(
                'id', card.id, 'title', card.title, 'client_id', card.client_id,
                'client_name', (SELECT clients.name FROM clients WHERE clients.id = card.client_id AND ({readable})),
                'amount', card.amount::text, 'currency', card.currency, 'probability', card.probability,
                'responsible_id', card.responsible_id, 'stage_changed_at', card.stage_changed_at)
              ORDER BY card.stage_changed_at DESC, card.id DESC), '[]')
     FROM (SELECT deals.id, deals.title, deals.client_id, deals.amount, deals.currency, deals.probability,
                  deals.responsible_id, deals.stage_changed_at
           FROM deals WHERE deals.stage_id = pipeline_stages.id AND ({visible})
           ORDER BY deals.stage_changed_at DESC, deals.id DESC
           LIMIT {cards}) card) AS cards
FROM pipeline_stages
WHERE pipeline_stages.pipeline_id = {pipeline_id}
ORDER BY pipeline_stages.position, pipeline_stages.id
"""


class BoardCard(msgspec.Struct, kw_only=True):
    id: int
    title: str
    client_id: int
    # None when the caller may not read the client.
    client_name: str | None
    amount: str
    currency: str
    probability: int
    responsible_id: int | None
    stage_changed_at: datetime


class StageFigure(msgspec.Struct, kw_only=True):
    currency: str
    deals: int
    amount: str


class BoardColumn(msgspec.Struct, kw_only=True):
    stage_id: int
    key: str
    names: dict[str, str]
    kind: str
    probability: int
    deals: int
    figures: list[StageFigure]
    cards: list[BoardCard]
    # Where the stage's next cards start (``stage_cards``); None when all are shown.
    next_cursor: str | None


_cards = msgspec.json.Decoder(list[BoardCard])
_figures = msgspec.json.Decoder(list[StageFigure])
_names = msgspec.json.Decoder(dict[str, str])


async def deals_board(principal: Principal, pipeline_id: int, per_stage: int = DEFAULT_LIMIT) -> list[BoardColumn]:
    """The columns of pipeline ``pipeline_id`` (404 when there is no such pipeline)."""
    parts = {
        "visible": (await records_in_scope(principal, "deals", "read", *OWNERS)).querystring,
        "readable": (await clients_in_scope(principal, "read")).querystring,
        "cards": per_stage + 1,
        "pipeline_id": pipeline_id,
    }
    sql, values = compile_named(_BOARD, parts)

    async def read() -> list[Any]:
        return list(await scope_connection().fetch(sql, *values))

    rows = await read_in_tenant(principal.tenant, read)
    if not rows:
        raise NotFound(f"There is no pipeline {pipeline_id}.")
    return [_column(row, per_stage) for row in rows]


def _column(row: Any, per_stage: int) -> BoardColumn:
    cards = _cards.decode(row["cards"])
    figures = _figures.decode(row["figures"])
    names = row["names"]
    shown, after = page_of(
        [{"stage_changed_at": card.stage_changed_at, "id": card.id, "card": card} for card in cards],
        BOARD_ORDER,
        per_stage,
    )
    return BoardColumn(
        stage_id=row["id"],
        key=row["key"],
        names=_names.decode(names) if isinstance(names, str) else dict(names),
        kind=row["kind"],
        probability=row["probability"],
        deals=sum(figure.deals for figure in figures),
        figures=figures,
        cards=[item["card"] for item in shown],
        next_cursor=after,
    )


async def stage_cards(
    principal: Principal, stage_id: int, cursor: str | None, limit: int = DEFAULT_LIMIT
) -> tuple[list[BoardCard], str | None]:
    """The next cards of one stage after ``cursor`` (a column's ``next_cursor``)."""
    rows, after = await list_deals(principal, DealFilters(stage_id=stage_id), BOARD_ORDER, cursor, limit)
    names = await _client_names(principal, sorted({row["client_id"] for row in rows}))
    cards = [
        BoardCard(
            id=row["id"],
            title=row["title"],
            client_id=row["client_id"],
            client_name=names.get(row["client_id"]),
            amount=f"{row['amount']:.2f}",
            currency=row["currency"],
            probability=row["probability"],
            responsible_id=row["responsible_id"],
            stage_changed_at=row["stage_changed_at"],
        )
        for row in rows
    ]
    return cards, after


async def _client_names(principal: Principal, client_ids: list[int]) -> dict[int, str]:
    """Names of the clients among ``client_ids`` the caller may read."""
    if not client_ids:
        return {}

    async def read() -> dict[int, str]:
        readable = await clients_in_scope(principal, "read")
        rows = await Client.select(Client.id, Client.name).where(Client.id.is_in(client_ids), readable)
        return {row["id"]: row["name"] for row in rows}

    return await read_in_tenant(principal.tenant, read)
