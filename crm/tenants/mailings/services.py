"""Mailing actions: segments, templates and mailings, each change one audited transaction.

Rights: the ``mailings`` entity of the role, scoped by the author of the segment, template
or mailing. Recipients are the segment's clients the mailing's author may read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from jinja2 import TemplateError

from crm.platform.auth import Origin, Principal
from crm.platform.errors import Conflict, FieldError, InvalidInput, LimitReached
from crm.platform.mail import MailError, build_message, current_mail, message_id_for, send_message
from crm.platform.tenancy import read_in_tenant, scope_connection, tenant_scope
from crm.platform.timers import schedule
from crm.tenants.audit.services import record_audit
from crm.tenants.clients._read import clients_in_scope
from crm.tenants.clients.tables import Client
from crm.tenants.configuration.settings import company_profile
from crm.tenants.mail.sender import tenant_sender
from crm.tenants.mailings.quota import letters_this_month, monthly_limit
from crm.tenants.mailings.rendering import SAMPLE, CompiledTemplate, check_template, client_context
from crm.tenants.mailings.schemas import (
    MailingCreate,
    MailingRead,
    Preview,
    Progress,
    SegmentCount,
    SegmentFilters,
    SegmentRead,
    SegmentWrite,
    TemplateRead,
    TemplateWrite,
    TestSent,
)
from crm.tenants.mailings.segments import check_filters, count_segment
from crm.tenants.mailings.tables import Delivery, Mailing, MailTemplate, Segment
from crm.tenants.mailings.unsubscribe import unsubscribe_url
from crm.tenants.users.scopes import records_in_scope, row_in_scope
from crm.tenants.users.tables import User

SEND_KIND = "mailings.send"
MAX_NAME = 200


def _name(value: str, errors: list[FieldError]) -> str:
    name = " ".join(value.split())
    if not 1 <= len(name) <= MAX_NAME:
        errors.append(FieldError("name", f"must be 1 to {MAX_NAME} characters"))
    return name


# --- segments ------------------------------------------------------------------------------

SEGMENT_COLUMNS = (
    Segment.id,
    Segment.name,
    Segment.filters,
    Segment.author_id,
    Segment.created_at,
    Segment.updated_at,
)


def segment_read(row: dict[str, Any]) -> SegmentRead:
    filters = msgspec.convert(row["filters"], SegmentFilters)
    return SegmentRead(**{**row, "filters": filters})


async def owned(principal: Principal, action: str, *owners: Any) -> Any:
    return await records_in_scope(principal, "mailings", action, *owners)


async def get_segment(principal: Principal, segment_id: int) -> SegmentRead:
    async def work() -> SegmentRead:
        allowed = await owned(principal, "read", Segment.author_id)
        return segment_read(
            await row_in_scope(Segment, SEGMENT_COLUMNS, segment_id, allowed, noun="segment", action="read")
        )

    return await read_in_tenant(principal.tenant, work)


async def save_segment(
    principal: Principal, data: SegmentWrite, *, origin: Origin, segment_id: int | None = None
) -> SegmentRead:
    """Create (``segment_id`` None) or replace a segment."""
    errors: list[FieldError] = []
    name = _name(data.name, errors)
    if errors:
        raise InvalidInput("The segment has invalid fields.", errors=errors)
    async with tenant_scope(principal.tenant):
        filters = await check_filters(data.filters)
        stored = msgspec.to_builtins(filters)
        if segment_id is None:
            rows = await Segment.insert(Segment(name=name, filters=stored, author_id=principal.user_id)).returning(
                Segment.id
            )
            segment_id = int(rows[0]["id"])
            await record_audit(
                origin.user(principal), "segment.created", entity="segment", entity_id=segment_id,
                changes={"name": (None, name), "filters": (None, stored)},
            )  # fmt: skip
        else:
            allowed = await owned(principal, "update", Segment.author_id)
            before = await row_in_scope(
                Segment, SEGMENT_COLUMNS, segment_id, allowed, noun="segment", action="update", lock=True
            )
            await Segment.update(
                {Segment.name: name, Segment.filters: stored, Segment.updated_at: datetime.now(UTC)}
            ).where(Segment.id == segment_id)
            await record_audit(
                origin.user(principal), "segment.updated", entity="segment", entity_id=segment_id,
                changes={"name": (before["name"], name), "filters": (before["filters"], stored)},
            )  # fmt: skip
        row = await Segment.select(*SEGMENT_COLUMNS).where(Segment.id == segment_id).output(load_json=True).first()
        assert row is not None
        return segment_read(row)


async def delete_segment(principal: Principal, segment_id: int, *, origin: Origin) -> None:
    async with tenant_scope(principal.tenant):
        allowed = await owned(principal, "delete", Segment.author_id)
        row = await row_in_scope(Segment, SEGMENT_COLUMNS, segment_id, allowed, noun="segment", action="delete")
        if await Mailing.exists().where(Mailing.segment_id == segment_id):
            raise Conflict("The segment is used by a mailing.", errors=[FieldError("segment_id", "is in use")])
        await Segment.delete().where(Segment.id == segment_id)
        await record_audit(
            origin.user(principal), "segment.deleted", entity="segment", entity_id=segment_id,
            changes={"name": (row["name"], None)},
        )  # fmt: skip


async def count_filters(principal: Principal, filters: SegmentFilters) -> SegmentCount:
    """The live count of a segment's recipients, as if the mailing started now."""

    async def work() -> SegmentCount:
        clients, recipients = await count_segment(principal, await check_filters(filters))
        return SegmentCount(clients=clients, recipients=recipients)

    return await read_in_tenant(principal.tenant, work)


# --- templates -----------------------------------------------------------------------------

TEMPLATE_COLUMNS = (
    MailTemplate.id,
    MailTemplate.name,
    MailTemplate.subject,
    MailTemplate.text,
    MailTemplate.html,
    MailTemplate.author_id,
    MailTemplate.created_at,
    MailTemplate.updated_at,
)


async def _template_row(principal: Principal, template_id: int, action: str, *, lock: bool = False) -> dict[str, Any]:
    allowed = await owned(principal, action, MailTemplate.author_id)
    return await row_in_scope(
        MailTemplate, TEMPLATE_COLUMNS, template_id, allowed, noun="template", action=action, lock=lock
    )


async def get_template(principal: Principal, template_id: int) -> TemplateRead:
    async def work() -> TemplateRead:
        return TemplateRead(**await _template_row(principal, template_id, "read"))

    return await read_in_tenant(principal.tenant, work)


async def save_template(
    principal: Principal, data: TemplateWrite, *, origin: Origin, template_id: int | None = None
) -> TemplateRead:
    """Create or replace a template; 422 naming the field and variable of any template error."""
    errors: list[FieldError] = []
    name = _name(data.name, errors)
    if errors:
        raise InvalidInput("The template has invalid fields.", errors=errors)
    check_template(data.subject, data.text, data.html)
    values = {"name": name, "subject": data.subject.strip(), "text": data.text, "html": data.html}
    async with tenant_scope(principal.tenant):
        if template_id is None:
            template = MailTemplate(
                name=name, subject=values["subject"], text=data.text, html=data.html, author_id=principal.user_id
            )
            rows = await MailTemplate.insert(template).returning(MailTemplate.id)
            template_id = int(rows[0]["id"])
            changes = {field: (None, value) for field, value in values.items()}
            action = "mail_template.created"
        else:
            before = await _template_row(principal, template_id, "update", lock=True)
            await MailTemplate.update(
                {**{getattr(MailTemplate, field): value for field, value in values.items()},
                 MailTemplate.updated_at: datetime.now(UTC)}
            ).where(MailTemplate.id == template_id)  # fmt: skip
            changes = {field: (before[field], value) for field, value in values.items() if before[field] != value}
            action = "mail_template.updated"
        await record_audit(
            origin.user(principal), action, entity="mail_template", entity_id=template_id, changes=changes
        )
        return TemplateRead(**await _template_row(principal, template_id, "read"))


async def delete_template(principal: Principal, template_id: int, *, origin: Origin) -> None:
    async with tenant_scope(principal.tenant):
        row = await _template_row(principal, template_id, "delete")
        if await Mailing.exists().where(Mailing.template_id == template_id):
            raise Conflict("The template is used by a mailing.", errors=[FieldError("template_id", "is in use")])
        await MailTemplate.delete().where(MailTemplate.id == template_id)
        await record_audit(
            origin.user(principal), "mail_template.deleted", entity="mail_template", entity_id=template_id,
            changes={"name": (row["name"], None)},
        )  # fmt: skip


async def _client_context(principal: Principal, client_id: int, email: str | None = None) -> tuple[str, dict[str, Any]]:
    allowed = await clients_in_scope(principal, "read")
    client = await row_in_scope(
        Client,
        (Client.id, Client.name, Client.kind, Client.emails, Client.responsible_id),
        client_id,
        allowed,
        noun="client",
        action="read",
    )
    to = email or (client["emails"][0] if client["emails"] else "")
    responsible = None
    if client["responsible_id"] is not None:
        responsible = await User.select(User.name, User.email).where(User.id == client["responsible_id"]).first()
    company = await company_profile()
    context = client_context(
        name=client["name"],
        kind=client["kind"],
        email=to,
        company=company.get("name") or principal.tenant.slug,
        responsible_name=responsible["name"] if responsible else None,
        responsible_email=responsible["email"] if responsible else None,
        unsubscribe_url=unsubscribe_url(principal.tenant.id, 0),
    )
    return to, context


async def preview_template(principal: Principal, template_id: int, client_id: int) -> Preview:
    """The template rendered for one client (the unsubscribe link is a sample that does nothing)."""

    async def work() -> Preview:
        row = await _template_row(principal, template_id, "read")
        to, context = await _client_context(principal, client_id)
        rendered = CompiledTemplate(row["subject"], row["text"], row["html"]).render(context)
        return Preview(to=to, subject=rendered.subject, text=rendered.text, html=rendered.html)

    return await read_in_tenant(principal.tenant, work)


async def preview_draft(principal: Principal, subject: str, text: str, html: str | None) -> Preview:
    """An unsaved template (the console's editor), checked as saving it would check it (422
    naming each field and variable), rendered for a sample client of the caller's company
    with the caller as the responsible user."""
    check_template(subject, text, html)
    company = await read_in_tenant(principal.tenant, company_profile)
    context = {
        **SAMPLE,
        "company": {"name": company.get("name") or principal.tenant.slug},
        "responsible": {"name": principal.name, "email": principal.email},
    }
    try:
        rendered = CompiledTemplate(subject, text, html).render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, OverflowError) as error:
        # Checked against the sample values; the company's own ones can still trip a filter.
        problem = FieldError("text", f"fails to render: {type(error).__name__}: {error}")
        raise InvalidInput("The template has invalid fields.", errors=[problem]) from None
    return Preview(to=SAMPLE["client"]["email"], subject=rendered.subject, text=rendered.text, html=rendered.html)


async def send_test(principal: Principal, template_id: int, client_id: int) -> TestSent:
    """Send the template, rendered for a client, to the caller's own address (now, not queued)."""

    async def work() -> tuple[Preview, Any]:
        preview = await preview_template(principal, template_id, client_id)
        return preview, await tenant_sender()

    preview, sender = await read_in_tenant(principal.tenant, work)
    message = build_message(
        sender=sender,
        to=principal.email,
        subject=f"[test] {preview.subject}",
        text=preview.text,
        html=preview.html,
        message_id=message_id_for(f"{principal.tenant.id}.test.{datetime.now(UTC).timestamp()}", sender),
    )
    try:
        await send_message(current_mail().transport, message)
    except MailError as error:
        raise Conflict(f"The test message could not be sent: {error}") from None
    return TestSent(to=principal.email)


# --- mailings ------------------------------------------------------------------------------

MAILING_COLUMNS = (
    Mailing.id,
    Mailing.name,
    Mailing.segment_id,
    Mailing.template_id,
    Mailing.state,
    Mailing.scheduled_at,
    Mailing.started_at,
    Mailing.finished_at,
    Mailing.error,
    Mailing.author_id,
    Mailing.created_at,
    Mailing.total,
)


async def progress_of(mailing_ids: list[int]) -> dict[int, Progress]:
    rows = await scope_connection().fetch(
        "SELECT mailing_id, count(*) AS total,"
        " count(*) FILTER (WHERE state = 'sent') AS sent,"
        " count(*) FILTER (WHERE state = 'failed') AS failed,"
        " count(*) FILTER (WHERE state IN ('pending', 'sending')) AS pending,"
        " count(*) FILTER (WHERE state = 'cancelled') AS cancelled"
        " FROM mailing_deliveries WHERE mailing_id = ANY($1::int[]) GROUP BY mailing_id",
        mailing_ids,
    )
    found = {row["mailing_id"]: Progress(**{k: row[k] for k in ("total", "sent", "failed", "pending", "cancelled")})
             for row in rows}  # fmt: skip
    return {mailing_id: found.get(mailing_id, Progress(total=0, sent=0, failed=0, pending=0, cancelled=0))
            for mailing_id in mailing_ids}  # fmt: skip


def mailing_read(row: dict[str, Any], progress: Progress) -> MailingRead:
    values = {key: value for key, value in row.items() if key != "total"}
    return MailingRead(**values, progress=progress)


async def _mailing_row(principal: Principal, mailing_id: int, action: str, *, lock: bool = False) -> dict[str, Any]:
    allowed = await owned(principal, action, Mailing.author_id)
    return await row_in_scope(Mailing, MAILING_COLUMNS, mailing_id, allowed, noun="mailing", action=action, lock=lock)


async def get_mailing(principal: Principal, mailing_id: int) -> MailingRead:
    async def work() -> MailingRead:
        row = await _mailing_row(principal, mailing_id, "read")
        return mailing_read(row, (await progress_of([mailing_id]))[mailing_id])

    return await read_in_tenant(principal.tenant, work)


async def create_mailing(principal: Principal, data: MailingCreate, *, origin: Origin) -> MailingRead:
    errors: list[FieldError] = []
    name = _name(data.name, errors)
    async with tenant_scope(principal.tenant):
        segments = await owned(principal, "read", Segment.author_id)
        if not await Segment.exists().where(Segment.id == data.segment_id, segments):
            errors.append(FieldError("segment_id", "no such segment you may read"))
        templates = await owned(principal, "read", MailTemplate.author_id)
        if not await MailTemplate.exists().where(MailTemplate.id == data.template_id, templates):
            errors.append(FieldError("template_id", "no such template you may read"))
        if errors:
            raise InvalidInput("The mailing has invalid fields.", errors=errors)
        rows = await Mailing.insert(
            Mailing(name=name, segment_id=data.segment_id, template_id=data.template_id, author_id=principal.user_id)
        ).returning(Mailing.id)
        mailing_id = int(rows[0]["id"])
        await record_audit(
            origin.user(principal), "mailing.created", entity="mailing", entity_id=mailing_id,
            changes={"name": (None, name), "segment_id": (None, data.segment_id),
                     "template_id": (None, data.template_id)},
        )  # fmt: skip
        row = await _mailing_row(principal, mailing_id, "read")
        return mailing_read(row, (await progress_of([mailing_id]))[mailing_id])


async def schedule_mailing(
    principal: Principal, mailing_id: int, at: datetime | None, *, origin: Origin
) -> MailingRead:
    """Send the mailing at ``at`` (now when None). The recipients are counted against the
    edition's monthly limit now (402 if they do not fit) and again when it starts."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput("Times must carry a UTC offset.", errors=[FieldError("at", "must carry a UTC offset")])
    async with tenant_scope(principal.tenant):
        row = await _mailing_row(principal, mailing_id, "update", lock=True)
        if row["state"] != "draft":
            raise Conflict(f"The mailing is {row['state']}; only a draft can be scheduled.",
                           errors=[FieldError("state", f"is {row['state']}")])  # fmt: skip
        segment = await Segment.select(Segment.filters).where(Segment.id == row["segment_id"]).output(load_json=True)
        filters = msgspec.convert(segment[0]["filters"], SegmentFilters)
        _, recipients = await count_segment(principal, filters)
        limit = monthly_limit(principal.tenant.edition)
        if limit is not None and await letters_this_month() + recipients > limit:
            raise LimitReached(
                f"The {principal.tenant.edition!r} edition allows {limit} mailing letters a month; "
                f"this mailing has {recipients} recipients.",
                quota="mailings_per_month",
                limit=limit,
                edition=principal.tenant.edition,
            )
        await Mailing.update({Mailing.state: "scheduled", Mailing.scheduled_at: at or datetime.now(UTC)}).where(
            Mailing.id == mailing_id
        )
        await schedule(scope_connection(), SEND_KIND, principal.tenant.id, {"mailing_id": mailing_id}, due_at=at)
        await record_audit(
            origin.user(principal), "mailing.scheduled", entity="mailing", entity_id=mailing_id,
            changes={"state": ("draft", "scheduled"), "scheduled_at": (None, (at or datetime.now(UTC)).isoformat())},
        )  # fmt: skip
        row = await _mailing_row(principal, mailing_id, "read")
        return mailing_read(row, (await progress_of([mailing_id]))[mailing_id])


async def cancel_mailing(principal: Principal, mailing_id: int, *, origin: Origin) -> MailingRead:
    """Stop a scheduled or sending mailing: letters not yet handed over are not sent (a batch
    in flight finishes)."""
    async with tenant_scope(principal.tenant):
        row = await _mailing_row(principal, mailing_id, "update", lock=True)
        if row["state"] not in ("draft", "scheduled", "sending"):
            raise Conflict(
                f"The mailing is {row['state']} already.", errors=[FieldError("state", f"is {row['state']}")]
            )
        await Mailing.update({Mailing.state: "cancelled", Mailing.finished_at: datetime.now(UTC)}).where(
            Mailing.id == mailing_id
        )
        await Delivery.update({Delivery.state: "cancelled"}).where(
            Delivery.mailing_id == mailing_id, Delivery.state == "pending"
        )
        await record_audit(
            origin.user(principal), "mailing.cancelled", entity="mailing", entity_id=mailing_id,
            changes={"state": (row["state"], "cancelled")},
        )  # fmt: skip
        row = await _mailing_row(principal, mailing_id, "read")
        return mailing_read(row, (await progress_of([mailing_id]))[mailing_id])
