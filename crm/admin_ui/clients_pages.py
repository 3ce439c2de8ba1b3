"""Clients in the console: the list with live search and filters, and the "New client" form.

The list pages through the API's own ``list_clients`` (keyset, "More"). Text typed in the
search box goes to the search service instead — typos, word order, a phone in any format
or its last digits — and its client hits, best first, are narrowed by the same filters.
The card and its forms live in :mod:`crm.admin_ui.client_card_pages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.client_card_pages import ClientCardPages
from crm.admin_ui.clients_forms import FieldErrors
from crm.admin_ui.console import Console, is_htmx, open_console, redirect, render, require
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput, LimitReached
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.clients._duplicates import DuplicateClient
from crm.tenants.clients._listing import CLIENT_LIST, ClientFilters, list_clients
from crm.tenants.clients.schemas import STATUSES, ClientCreate, ClientRead
from crm.tenants.clients.services import create_client
from crm.tenants.search.services import CLIENTS_ONLY, search
from crm.tenants.tasks.reads import zone_of
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User

PAGE = 50
SEARCH_HITS = 50  # the search service's most
MIN_SEARCH = 2
MAX_SEARCH = 200
DORMANT_CHOICES = (30, 60, 90, 180, 365)
MAX_STAFF_LISTED = 500
RESULTS_ID = "client-results"
MORE_ID = "clients-more"

register_page("/clients")

add_texts(
    {
        "ru": {
            "clients.title": "Клиенты",
            "clients.new": "Новый клиент",
            "clients.search": "Поиск: имя, телефон, эл. почта, ИНН",
            "clients.filters": "Фильтры",
            "clients.apply": "Показать",
            "clients.reset": "Сбросить",
            "clients.status": "Статус",
            "clients.any": "Любой",
            "clients.responsible": "Ответственный",
            "clients.anyone": "Любой",
            "clients.tag": "Метка",
            "clients.dormant": "Без контакта",
            "clients.dormant_any": "Неважно",
            "clients.dormant_days": "больше {days} дн.",
            "clients.name": "Клиент",
            "clients.phone": "Телефон",
            "clients.last_contact": "Последний контакт",
            "clients.never": "не было",
            "clients.none": "Клиентов не найдено.",
            "clients.best_matches": "Лучшие совпадения по запросу «{q}».",
            "clients.too_short": "Введите хотя бы 2 символа для поиска.",
            "clients.status.lead": "Лид",
            "clients.status.prospect": "Потенциальный",
            "clients.status.client": "Клиент",
            "clients.status.former": "Бывший",
            "clients.kind.company": "Компания",
            "clients.kind.person": "Человек",
            "clients.kind": "Кто это",
            "clients.email": "Эл. почта",
            "clients.tax_id": "ИНН",
            "clients.tags": "Метки (через запятую)",
            "clients.me": "Я",
            "clients.create": "Добавить клиента",
            "clients.duplicates": "Похоже, такой клиент уже есть:",
            "clients.duplicate_hidden": "клиент, которого вам не видно",
            "clients.matched.phone": "телефон",
            "clients.matched.email": "эл. почта",
            "clients.matched.tax_id": "ИНН",
            "clients.force": "Всё равно сохранить нового клиента",
            "clients.limit": "В вашем тарифе больше нет места для клиентов.",
        },
        "en": {
            "clients.title": "Clients",
            "clients.new": "New client",
            "clients.search": "Search: name, phone, e-mail, tax id",
            "clients.filters": "Filters",
            "clients.apply": "Show",
            "clients.reset": "Reset",
            "clients.status": "Status",
            "clients.any": "Any",
            "clients.responsible": "Responsible",
            "clients.anyone": "Anyone",
            "clients.tag": "Tag",
            "clients.dormant": "Not contacted",
            "clients.dormant_any": "Any time",
            "clients.dormant_days": "for over {days} days",
            "clients.name": "Client",
            "clients.phone": "Phone",
            "clients.last_contact": "Last contact",
            "clients.never": "never",
            "clients.none": "No clients found.",
            "clients.best_matches": "Best matches for “{q}”.",
            "clients.too_short": "Type at least 2 characters to search.",
            "clients.status.lead": "Lead",
            "clients.status.prospect": "Prospect",
            "clients.status.client": "Client",
            "clients.status.former": "Former",
            "clients.kind.company": "Company",
            "clients.kind.person": "Person",
            "clients.kind": "Kind",
            "clients.email": "E-mail",
            "clients.tax_id": "Tax id",
            "clients.tags": "Tags (comma-separated)",
            "clients.me": "Me",
            "clients.create": "Add the client",
            "clients.duplicates": "This client may already exist:",
            "clients.duplicate_hidden": "a client you cannot see",
            "clients.matched.phone": "phone",
            "clients.matched.email": "e-mail",
            "clients.matched.tax_id": "tax id",
            "clients.force": "Save the new client anyway",
            "clients.limit": "Your plan has no room for more clients.",
        },
    }
)


@dataclass
class ListQuery:
    """The list's query string, checked: what is not valid is left out, not an error (a
    hand-edited address shows the whole list rather than a problem)."""

    q: str = ""
    status: str = ""
    responsible: int | None = None
    tag: str = ""
    dormant: int | None = None
    cursor: str | None = None

    @classmethod
    def of(cls, request: Request[Any, Any, Any]) -> ListQuery:
        params = request.query_params
        status = str(params.get("status") or "")
        return cls(
            q=" ".join(str(params.get("q") or "").split())[:MAX_SEARCH],
            status=status if status in STATUSES else "",
            responsible=_id_or_none(params.get("responsible")),
            tag=" ".join(str(params.get("tag") or "").split())[:50],
            dormant=_int_in(params.get("dormant"), DORMANT_CHOICES),
            cursor=str(params.get("cursor") or "") or None,
        )

    @property
    def searching(self) -> bool:
        return len(self.q) >= MIN_SEARCH

    def filters(self, ids: tuple[int, ...] | None = None) -> ClientFilters:
        return ClientFilters(
            status=self.status or None,
            responsible_id=self.responsible,
            tag=self.tag or None,
            dormant_days=self.dormant,
            ids=ids,
        )

    def link(self, **changes: Any) -> str:
        """The query string of this list with ``changes`` (empty values left out)."""
        values = {
            "q": self.q,
            "status": self.status,
            "responsible": self.responsible,
            "tag": self.tag,
            "dormant": self.dormant,
            "cursor": None,
            **changes,
        }
        return urlencode({key: value for key, value in values.items() if value not in (None, "")})


@dataclass
class Results:
    clients: list[ClientRead] = field(default_factory=list)
    next_cursor: str | None = None
    ranked: bool = False  # search hits, best first (no further pages)


def _id_or_none(raw: Any) -> int | None:
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if 1 <= value <= MAX_ID else None


def _int_in(raw: Any, allowed: tuple[int, ...]) -> int | None:
    value = _id_or_none(raw)
    return value if value in allowed else None


async def staff(principal: Principal) -> dict[int, str]:
    """Active colleagues the user may see, by id: the responsible filter and names."""
    rows = (
        await User.select(User.id, User.name)
        .where(await users_in_scope(principal, "read"), User.is_active.eq(True))
        .order_by(User.name)
        .limit(MAX_STAFF_LISTED)
    )
    names = {row["id"]: row["name"] for row in rows}
    names.setdefault(principal.user_id, principal.name)
    return names


async def find_clients(principal: Principal, query: ListQuery) -> Results:
    """The list's rows: a keyset page, or the search's client hits narrowed by the filters."""
    if not query.searching:
        items, after = await list_clients(principal, query.filters(), CLIENT_LIST.ordering(None), query.cursor, PAGE)
        return Results(items, after)
    hits = [hit.id for hit in await search(principal, query.q, SEARCH_HITS, only=CLIENTS_ONLY)]
    if not hits:
        return Results(ranked=True)
    items, _ = await list_clients(principal, query.filters(tuple(hits)), CLIENT_LIST.ordering(None), None, len(hits))
    rank = {client_id: place for place, client_id in enumerate(hits)}
    return Results(sorted(items, key=lambda client: rank[client.id]), ranked=True)


class ClientListPages(Controller):
    path = "/{company:str}/clients"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def list_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "clients", "read", "clients")
        query = ListQuery.of(request)
        async with tenant_scope(console.tenant):
            results = await find_clients(console.user, query)
            names = await staff(console.user)
        context: dict[str, Any] = {
            "query": query,
            "results": results,
            "staff": names,
            "zone": zone_of(console.user.timezone),
            "statuses": STATUSES,
            "dormant_choices": DORMANT_CHOICES,
        }
        target = request.headers.get("hx-target")
        if is_htmx(request) and not request.headers.get("hx-history-restore-request"):
            # "More" appends rows to the table; the search box and filters replace the results.
            template = "clients_rows.html" if target == MORE_ID else "clients_results.html"
            return render(console, template, **context)
        return render(console, "clients_list.html", **context)

    @get("/new", opt=PUBLIC)
    async def new_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "clients", "create", "clients")
        return await _new_form(console, {"kind": "company", "status": "lead"}, FieldErrors.none())

    @post("/", opt=PUBLIC)
    async def create(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "clients", "create", "clients")
        form = {key: str(value) for key, value in (await request.form()).items()}
        responsible = _id_or_none(form.get("responsible_id"))
        data = ClientCreate(
            kind=form.get("kind", ""),
            name=form.get("name", ""),
            phones=[form["phone"]] if form.get("phone", "").strip() else [],
            emails=[form["email"]] if form.get("email", "").strip() else [],
            tax_id=form.get("tax_id") or None,
            status=form.get("status", "lead"),
            responsible_id=responsible,
            tags=[tag for tag in form.get("tags", "").split(",") if tag.strip()],
        )
        try:
            client = await create_client(console.user, data, origin=console.origin(), force=bool(form.get("force")))
        except InvalidInput as problem:
            return await _new_form(console, form, FieldErrors.of(console, problem.errors), status_code=422)
        except DuplicateClient as duplicate:
            return await _new_form(
                console, form, FieldErrors.none(), duplicates=duplicate.extra["duplicates"], status_code=409
            )
        except LimitReached:
            return await _new_form(console, form, FieldErrors.none(), limit=True, status_code=402)
        return redirect(console, request, console.url(f"/clients/{client.id}"))


async def _new_form(
    console: Console,
    form: dict[str, str],
    errors: FieldErrors,
    *,
    duplicates: list[dict[str, Any]] | None = None,
    limit: bool = False,
    status_code: int = 200,
) -> Response[str]:
    assigns_others = console.user.scope("clients", "assign") not in ("none", "own")
    names: dict[int, str] = {}
    if assigns_others:
        async with tenant_scope(console.tenant):
            names = await staff(console.user)
    return render(
        console,
        "clients_new.html",
        status_code=status_code,
        form=form,
        errors=errors,
        duplicates=duplicates or [],
        limit=limit,
        staff=names,
        statuses=STATUSES,
    )


CONTROLLERS: list[type] = [ClientListPages, ClientCardPages]
