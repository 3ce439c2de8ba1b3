"""The segment builder's form: what the page shows in its fields, read from a saved segment
or from a post, and turned into the mailing services' ``SegmentFilters``.

Dates are days on the user's clock: "last contact from" is the start of that day,
"last contact before" the start of that day too (so "before 1 March" leaves 1 March out).
Custom-field filters (set over the API) have no fields here; they ride along in a hidden
field so saving from the console keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar.datastructures import FormMultiDict

from crm.admin_ui.work_forms import local_day_start
from crm.platform.auth import Principal
from crm.platform.errors import FieldError
from crm.tenants.deals.pipelines import list_pipelines
from crm.tenants.mailings.schemas import CLIENT_STATUSES, SegmentFilters
from crm.tenants.users.services import users_in_scope
from crm.tenants.users.tables import User

KINDS = ("company", "person")
_custom = msgspec.json.Decoder(dict[str, str | int | float | bool])


@dataclass
class SegmentForm:
    name: str = ""
    statuses: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    tags: str = ""
    responsible_ids: list[str] = field(default_factory=list)
    deal_stage_ids: list[str] = field(default_factory=list)
    last_contact_after: str = ""
    last_contact_before: str = ""
    never_contacted: bool = False
    custom: str = ""  # JSON of the custom-field filters, kept as they came


def _day(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).date().isoformat() if moment is not None else ""


def form_of_segment(name: str, filters: SegmentFilters, zone: ZoneInfo) -> SegmentForm:
    return SegmentForm(
        name=name,
        statuses=list(filters.statuses),
        kinds=list(filters.kinds),
        tags=", ".join(filters.tags),
        responsible_ids=[str(value) for value in filters.responsible_ids],
        deal_stage_ids=[str(value) for value in filters.deal_stage_ids],
        last_contact_after=_day(filters.last_contact_after, zone),
        last_contact_before=_day(filters.last_contact_before, zone),
        never_contacted=filters.never_contacted,
        custom=msgspec.json.encode(filters.custom).decode() if filters.custom else "",
    )


def form_of_post(posted: FormMultiDict) -> SegmentForm:
    def text(key: str) -> str:
        return str(posted.get(key) or "")

    def values(key: str) -> list[str]:
        return [str(value) for value in posted.getall(key, []) if str(value)]

    return SegmentForm(
        name=text("name"),
        statuses=values("statuses"),
        kinds=values("kinds"),
        tags=text("tags"),
        responsible_ids=values("responsible_ids"),
        deal_stage_ids=values("deal_stage_ids"),
        last_contact_after=text("last_contact_after"),
        last_contact_before=text("last_contact_before"),
        never_contacted=bool(posted.get("never_contacted")),
        custom=text("custom"),
    )


def _ids(values: list[str], name: str, errors: list[FieldError]) -> list[int]:
    ids = []
    for value in values:
        try:
            ids.append(int(value))
        except ValueError:
            errors.append(FieldError(f"filters.{name}", f"{value!r} is not an id"))
    return ids


def filters_of(form: SegmentForm, zone: ZoneInfo) -> tuple[SegmentFilters, list[FieldError]]:
    """The form as the services' filters, and what could not be read (the services check
    the rest: known statuses, existing users and stages, …)."""
    errors: list[FieldError] = []
    moments: dict[str, datetime | None] = {}
    for name in ("last_contact_after", "last_contact_before"):
        typed = getattr(form, name).strip()
        moments[name] = local_day_start(typed, zone) if typed else None
        if typed and moments[name] is None:
            errors.append(FieldError(f"filters.{name}", "must be a date"))
    custom: dict[str, Any] = {}
    if form.custom.strip():
        try:
            custom = _custom.decode(form.custom)
        except msgspec.DecodeError:
            errors.append(FieldError("filters.custom", "is not a set of custom-field filters"))
    filters = SegmentFilters(
        statuses=form.statuses,
        kinds=form.kinds,
        tags=[tag.strip() for tag in form.tags.split(",") if tag.strip()],
        custom=custom,
        responsible_ids=_ids(form.responsible_ids, "responsible_ids", errors),
        deal_stage_ids=_ids(form.deal_stage_ids, "deal_stage_ids", errors),
        last_contact_after=moments["last_contact_after"],
        last_contact_before=moments["last_contact_before"],
        never_contacted=form.never_contacted,
    )
    return filters, errors


@dataclass
class SegmentChoices:
    statuses: tuple[str, ...]
    kinds: tuple[str, ...]
    users: list[dict[str, Any]]
    # [(pipeline name, [(stage id, stage name)])]; empty without the deals module.
    pipelines: list[tuple[str, list[tuple[int, str]]]]


async def segment_choices(principal: Principal, *, locale: str, with_deals: bool) -> SegmentChoices:
    """What the builder offers (inside the tenant scope): the users the role may see as
    responsible, and the pipelines' stages when the edition has deals."""
    visible = await users_in_scope(principal, "read") | (User.id == principal.user_id)
    users: list[dict[str, Any]] = (
        await User.select(User.id, User.name).where(visible, User.is_active.eq(True)).order_by(User.name).limit(500)
    )
    pipelines = []
    if with_deals:
        for pipeline in await list_pipelines():
            stages = [(stage["id"], _named(stage["names"], locale, stage["key"])) for stage in pipeline["stages"]]
            pipelines.append((_named(pipeline["names"], locale, pipeline["key"]), stages))
    return SegmentChoices(statuses=CLIENT_STATUSES, kinds=KINDS, users=users, pipelines=pipelines)


def _named(names: Any, locale: str, fallback: str) -> str:
    return (
        str((names or {}).get(locale) or (names or {}).get("en") or fallback) if isinstance(names, dict) else fallback
    )
