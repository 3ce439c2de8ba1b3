"""Mailings in the console: the list with each mailing's state and progress, the segment
builder with a live count, the template editor with a preview rendered by the sandboxed
template service, scheduling, a running mailing's progress (polled by htmx) and cancelling.

Every read and change goes through crm/tenants/mailings (the API's own services), which
open their tenant scope themselves and check the ``mailings`` rights.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.console import Console, is_htmx, open_console, redirect, render, require
from crm.admin_ui.mailings_forms import SegmentForm, filters_of, form_of_post, form_of_segment, segment_choices
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.admin_ui.work_forms import LOCAL_FORMAT, field_errors, local_moment
from crm.platform.errors import Conflict, InvalidInput, LimitReached, NotFound
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.mailings import lists, services
from crm.tenants.mailings.rendering import VARIABLES
from crm.tenants.mailings.schemas import (
    MailingCreate,
    MailingRead,
    Preview,
    SegmentCount,
    SegmentWrite,
    TemplateWrite,
)
from crm.tenants.reminders.schedule import zone_of

MODULE = "mailings"
SHOWN = 50
CHOICES = 200
# A mailing about to start or sending: its progress is polled every second.
POLL_AHEAD = timedelta(minutes=1)
SEGMENT_ERRORS = {"name": "mailings.error.name"}
TEMPLATE_ERRORS = {"name": "mailings.error.name"}
MAILING_ERRORS = {
    "name": "mailings.error.name",
    "segment_id": "mailings.error.segment",
    "template_id": "mailings.error.template",
}
TEMPLATE_FIELDS = ("subject", "text", "html")

register_page("/mailings")

add_texts(
    {
        "ru": {
            "mailings.title": "Рассылки",
            "mailings.list": "Рассылки",
            "mailings.empty": "Рассылок пока нет.",
            "mailings.name": "Название",
            "mailings.state": "Состояние",
            "mailings.progress": "Отправлено",
            "mailings.created_at": "Создана",
            "mailings.new": "Новая рассылка",
            "mailings.create": "Создать черновик",
            "mailings.segment": "Сегмент",
            "mailings.template": "Шаблон",
            "mailings.choose": "— выберите —",
            "mailings.need_both": "Для рассылки нужны сегмент и шаблон.",
            "mailings.segments": "Сегменты",
            "mailings.templates": "Шаблоны писем",
            "mailings.new_segment": "Новый сегмент",
            "mailings.new_template": "Новый шаблон",
            "mailings.state.draft": "черновик",
            "mailings.state.scheduled": "запланирована",
            "mailings.state.sending": "отправляется",
            "mailings.state.sent": "отправлена",
            "mailings.state.cancelled": "отменена",
            "mailings.state.failed": "не удалась",
            "mailings.sent_of": "{done} из {total}",
            "mailings.total": "Всего",
            "mailings.sent": "Отправлено",
            "mailings.failed": "Ошибки",
            "mailings.pending": "В очереди",
            "mailings.cancelled": "Отменено",
            "mailings.scheduled_at": "Запланирована на",
            "mailings.started_at": "Началась",
            "mailings.finished_at": "Закончилась",
            "mailings.error_reason": "Причина",
            "mailings.schedule": "Отправка",
            "mailings.send_now": "Отправить сейчас",
            "mailings.send_at": "Отправить в указанное время",
            "mailings.at": "Дата и время отправки",
            "mailings.schedule_submit": "Запланировать",
            "mailings.cancel": "Отменить рассылку",
            "mailings.back": "Все рассылки",
            "mailings.error.name": "Название: от 1 до 200 символов.",
            "mailings.error.segment": "Выберите сегмент.",
            "mailings.error.template": "Выберите шаблон.",
            "mailings.error.at": "Укажите дату и время отправки.",
            "mailings.error.limit": "Тариф позволяет {limit} писем рассылок в месяц — эта рассылка не помещается.",
            "mailings.error.state": "Рассылка уже не черновик — обновите страницу.",
            "mailings.segment_title": "Сегмент",
            "mailings.segment_new": "Новый сегмент",
            "mailings.segment_intro": "Клиенты, подходящие под все условия; в списке — любое из отмеченного.",
            "mailings.statuses": "Статус клиента",
            "mailings.status.lead": "лид",
            "mailings.status.prospect": "потенциальный",
            "mailings.status.client": "клиент",
            "mailings.status.former": "бывший",
            "mailings.kinds": "Тип",
            "mailings.kind.company": "компания",
            "mailings.kind.person": "человек",
            "mailings.tags": "Теги (через запятую; подходит любой)",
            "mailings.responsible": "Ответственный",
            "mailings.last_contact_after": "Последний контакт не раньше",
            "mailings.last_contact_before": "Последний контакт раньше",
            "mailings.never_contacted": "Контактов ещё не было",
            "mailings.deal_stages": "Есть сделка на этапе",
            "mailings.custom_kept": "Условия по дополнительным полям (заданы через API) сохранятся: {filters}",
            "mailings.count": "Получателей сейчас: {recipients} (клиентов с e-mail: {clients})",
            "mailings.count_unknown": "Исправьте условия, чтобы посчитать получателей.",
            "mailings.recount": "Пересчитать",
            "mailings.save_segment": "Сохранить сегмент",
            "mailings.template_title": "Шаблон письма",
            "mailings.template_new": "Новый шаблон",
            "mailings.subject": "Тема",
            "mailings.text": "Текст письма",
            "mailings.html": "HTML-версия (необязательно)",
            "mailings.variables": "Подстановки",
            "mailings.preview": "Предпросмотр",
            "mailings.preview_hint": "Для примера — клиент Anna Smirnova; ответственный — вы.",
            "mailings.preview_to": "Кому",
            "mailings.save_template": "Сохранить шаблон",
            "mailings.default_text": "Здравствуйте, {{ client.first_name }}!\n\n\n\n"
            "{{ responsible.name }}, {{ company.name }}\n\nОтписаться: {{ unsubscribe_url }}\n",
            "mailings.read_only": "Ваша роль позволяет только смотреть.",
            "mailings.error.unknown_variable": "Неизвестная подстановка «{name}». Доступны: {known}.",
            "mailings.error.syntax": "Ошибка в шаблоне: {detail}",
            "mailings.error.unsafe": "Шаблон обращается к тому, что шаблонам недоступно.",
            "mailings.error.one_line": "Тема должна быть одной строкой.",
            "mailings.error.render": "Шаблон не удаётся заполнить: {detail}",
        },
        "en": {
            "mailings.title": "Mailings",
            "mailings.list": "Mailings",
            "mailings.empty": "No mailings yet.",
            "mailings.name": "Name",
            "mailings.state": "State",
            "mailings.progress": "Sent",
            "mailings.created_at": "Created",
            "mailings.new": "New mailing",
            "mailings.create": "Create a draft",
            "mailings.segment": "Segment",
            "mailings.template": "Template",
            "mailings.choose": "— choose —",
            "mailings.need_both": "A mailing needs a segment and a template.",
            "mailings.segments": "Segments",
            "mailings.templates": "Letter templates",
            "mailings.new_segment": "New segment",
            "mailings.new_template": "New template",
            "mailings.state.draft": "draft",
            "mailings.state.scheduled": "scheduled",
            "mailings.state.sending": "sending",
            "mailings.state.sent": "sent",
            "mailings.state.cancelled": "cancelled",
            "mailings.state.failed": "failed",
            "mailings.sent_of": "{done} of {total}",
            "mailings.total": "Total",
            "mailings.sent": "Sent",
            "mailings.failed": "Failed",
            "mailings.pending": "Waiting",
            "mailings.cancelled": "Cancelled",
            "mailings.scheduled_at": "Scheduled for",
            "mailings.started_at": "Started",
            "mailings.finished_at": "Finished",
            "mailings.error_reason": "Reason",
            "mailings.schedule": "Sending",
            "mailings.send_now": "Send now",
            "mailings.send_at": "Send at a set time",
            "mailings.at": "Date and time to send",
            "mailings.schedule_submit": "Schedule",
            "mailings.cancel": "Cancel the mailing",
            "mailings.back": "All mailings",
            "mailings.error.name": "Name: 1 to 200 characters.",
            "mailings.error.segment": "Choose a segment.",
            "mailings.error.template": "Choose a template.",
            "mailings.error.at": "Enter the date and time to send.",
            "mailings.error.limit": "Your plan allows {limit} mailing letters a month; this mailing does not fit.",
            "mailings.error.state": "The mailing is no longer a draft; reload the page.",
            "mailings.segment_title": "Segment",
            "mailings.segment_new": "New segment",
            "mailings.segment_intro": "Clients matching every condition; within a list, any of the ticked values.",
            "mailings.statuses": "Client status",
            "mailings.status.lead": "lead",
            "mailings.status.prospect": "prospect",
            "mailings.status.client": "client",
            "mailings.status.former": "former",
            "mailings.kinds": "Kind",
            "mailings.kind.company": "company",
            "mailings.kind.person": "person",
            "mailings.tags": "Tags (comma-separated; any of them)",
            "mailings.responsible": "Responsible",
            "mailings.last_contact_after": "Last contact on or after",
            "mailings.last_contact_before": "Last contact before",
            "mailings.never_contacted": "Never contacted",
            "mailings.deal_stages": "Has a deal in stage",
            "mailings.custom_kept": "Conditions on custom fields (set over the API) are kept: {filters}",
            "mailings.count": "Recipients now: {recipients} (clients with an e-mail: {clients})",
            "mailings.count_unknown": "Fix the conditions to count the recipients.",
            "mailings.recount": "Count again",
            "mailings.save_segment": "Save the segment",
            "mailings.template_title": "Letter template",
            "mailings.template_new": "New template",
            "mailings.subject": "Subject",
            "mailings.text": "Text of the letter",
            "mailings.html": "HTML version (optional)",
            "mailings.variables": "Placeholders",
            "mailings.preview": "Preview",
            "mailings.preview_hint": "For a sample client, Anna Smirnova, with you as the responsible user.",
            "mailings.preview_to": "To",
            "mailings.save_template": "Save the template",
            "mailings.default_text": "Hello {{ client.first_name }},\n\n\n\n"
            "{{ responsible.name }}, {{ company.name }}\n\nUnsubscribe: {{ unsubscribe_url }}\n",
            "mailings.read_only": "Your role may only look.",
            "mailings.error.unknown_variable": "Unknown placeholder “{name}”. Available: {known}.",
            "mailings.error.syntax": "The template has an error: {detail}",
            "mailings.error.unsafe": "The template reaches for something templates may not use.",
            "mailings.error.one_line": "The subject must be one line.",
            "mailings.error.render": "The template cannot be filled in: {detail}",
        },
    }
)


def _polling(mailing: MailingRead) -> bool:
    """Whether the page keeps asking for the progress: sending, or about to start."""
    if mailing.state == "sending":
        return True
    due = mailing.scheduled_at
    return mailing.state == "scheduled" and (due is None or due <= datetime.now(UTC) + POLL_AHEAD)


VARIABLE_NAMES = [f"{name}.{attribute}" if attribute else name for name, attributes in VARIABLES.items()
                  for attribute in (attributes or ("",))]  # fmt: skip


class MailingPagesController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    # ------------------------------------------------------------ the list and a new mailing

    async def _list_page(
        self,
        console: Console,
        *,
        cursor: str | None = None,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[str]:
        user = console.user
        error = None
        try:
            page = await lists.list_mailings(user, sort=None, cursor=cursor, limit=SHOWN)
        except InvalidInput:
            error = console.texts("work.bad_parameter", field="cursor")
            status_code = 422
            page = await lists.list_mailings(user, sort=None, cursor=None, limit=SHOWN)
        segments = await lists.list_segments(user, sort="name", cursor=None, limit=CHOICES)
        templates = await lists.list_templates(user, sort="name", cursor=None, limit=CHOICES)
        return render(
            console,
            "mailings_list.html",
            status_code=status_code,
            error=error,
            mailings=page.items,
            next_cursor=page.next_cursor,
            segments=segments.items,
            templates=templates.items,
            may_create=console.may("mailings", "create", MODULE),
            form=form or {"name": "", "segment_id": "", "template_id": ""},
            errors=errors or {},
            zone=zone_of(user.timezone),
        )

    @get("/mailings", opt=PUBLIC)
    async def mailings(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        return await self._list_page(console, cursor=request.query_params.get("cursor") or None)

    @post("/mailings", opt=PUBLIC)
    async def create_mailing(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "create", MODULE)
        posted = await request.form()
        form = {key: str(posted.get(key) or "") for key in ("name", "segment_id", "template_id")}
        # An id that is not a number is no segment or template the user may read: the service says so.
        data = MailingCreate(
            name=form["name"], segment_id=_id(form["segment_id"]), template_id=_id(form["template_id"])
        )
        try:
            mailing = await services.create_mailing(console.user, data, origin=console.origin())
        except InvalidInput as problem:
            errors = field_errors(console, problem, MAILING_ERRORS)
            return await self._list_page(console, form=form, errors=errors, status_code=422)
        return redirect(console, request, console.url(f"/mailings/{mailing.id}"))

    # ------------------------------------------------------------ one mailing

    async def _detail(
        self, console: Console, mailing_id: int, *, error: str | None = None, at: str = "", status_code: int = 200
    ) -> Response[str]:
        user = console.user
        mailing = await services.get_mailing(user, mailing_id)
        segment_name = template_name = None
        try:
            segment_name = (await services.get_segment(user, mailing.segment_id)).name
        except NotFound:
            pass  # another author's segment the role may not read: the mailing is still shown
        try:
            template_name = (await services.get_template(user, mailing.template_id)).name
        except NotFound:
            pass
        zone = zone_of(user.timezone)
        return render(
            console,
            "mailings_detail.html",
            status_code=status_code,
            mailing=mailing,
            segment_name=segment_name,
            template_name=template_name,
            may_update=console.may("mailings", "update", MODULE),
            polling=_polling(mailing),
            error=error,
            at=at or (datetime.now(UTC) + timedelta(hours=1)).astimezone(zone).strftime(LOCAL_FORMAT),
            zone=zone,
        )

    @get("/mailings/{mailing_id:int}", opt=PUBLIC)
    async def mailing(
        self, request: Request[Any, Any, Any], company: FromPath[str], mailing_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        return await self._detail(console, mailing_id)

    @get("/mailings/{mailing_id:int}/progress", opt=PUBLIC)
    async def progress(
        self, request: Request[Any, Any, Any], company: FromPath[str], mailing_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        mailing = await services.get_mailing(console.user, mailing_id)
        return render(
            console,
            "mailings_progress.html",
            mailing=mailing,
            polling=_polling(mailing),
            may_update=console.may("mailings", "update", MODULE),
            zone=zone_of(console.user.timezone),
        )

    @post("/mailings/{mailing_id:int}/schedule", opt=PUBLIC)
    async def schedule(
        self, request: Request[Any, Any, Any], company: FromPath[str], mailing_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "update", MODULE)
        posted = await request.form()
        typed = str(posted.get("at") or "")
        at = None
        if posted.get("when") == "at":
            at = local_moment(typed, zone_of(console.user.timezone))
            if at is None:
                return await self._detail(
                    console, mailing_id, error=console.texts("mailings.error.at"), at=typed, status_code=422
                )
        try:
            await services.schedule_mailing(console.user, mailing_id, at, origin=console.origin())
        except InvalidInput as problem:
            message = "; ".join(field_errors(console, problem, {"at": "mailings.error.at"}).values())
            return await self._detail(console, mailing_id, error=message, at=typed, status_code=422)
        except LimitReached as refused:
            message = console.texts("mailings.error.limit", limit=refused.extra.get("limit"))
            return await self._detail(console, mailing_id, error=message, at=typed, status_code=402)
        except Conflict:
            message = console.texts("mailings.error.state")
            return await self._detail(console, mailing_id, error=message, at=typed, status_code=409)
        return redirect(console, request, console.url(f"/mailings/{mailing_id}"))

    @post("/mailings/{mailing_id:int}/cancel", opt=PUBLIC)
    async def cancel(
        self, request: Request[Any, Any, Any], company: FromPath[str], mailing_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "update", MODULE)
        try:
            await services.cancel_mailing(console.user, mailing_id, origin=console.origin())
        except Conflict:
            pass  # finished meanwhile: the page shows how it ended
        return redirect(console, request, console.url(f"/mailings/{mailing_id}"))

    # ------------------------------------------------------------ segments

    async def _segment_page(
        self,
        console: Console,
        form: SegmentForm,
        *,
        segment_id: int | None,
        errors: dict[str, str] | None = None,
        count: SegmentCount | None = None,
        saved: bool = False,
        status_code: int = 200,
    ) -> Response[str]:
        user = console.user
        with_deals = console.has_module("deals")
        choices = await read_in_tenant(
            console.tenant, lambda: segment_choices(user, locale=console.texts.locale, with_deals=with_deals)
        )
        if count is None and not errors:
            count, _ = await self._count(console, form)
        action = "update" if segment_id else "create"
        return render(
            console,
            "mailings_segment.html",
            status_code=status_code,
            form=form,
            segment_id=segment_id,
            choices=choices,
            errors=errors or {},
            count=count,
            count_errors={},  # on the page they stand at their fields
            saved=saved,
            may_save=console.may("mailings", action, MODULE),
        )

    async def _count(self, console: Console, form: SegmentForm) -> tuple[SegmentCount | None, dict[str, str]]:
        """The live count of the form's filters, or the problems that keep it from counting."""
        filters, own = filters_of(form, zone_of(console.user.timezone))
        try:
            if own:
                raise InvalidInput("The segment has invalid filters.", errors=own)
            return await services.count_filters(console.user, filters), {}
        except InvalidInput as problem:
            return None, field_errors(console, problem, SEGMENT_ERRORS)

    @get("/mailings/segments/new", opt=PUBLIC)
    async def new_segment(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "create", MODULE)
        return await self._segment_page(console, SegmentForm(), segment_id=None)

    @get("/mailings/segments/{segment_id:int}", opt=PUBLIC)
    async def segment(
        self, request: Request[Any, Any, Any], company: FromPath[str], segment_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        segment = await services.get_segment(console.user, segment_id)
        form = form_of_segment(segment.name, segment.filters, zone_of(console.user.timezone))
        return await self._segment_page(
            console, form, segment_id=segment_id, saved=bool(request.query_params.get("saved"))
        )

    @post("/mailings/segments/count", opt=PUBLIC)
    async def count_segment(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        posted = await request.form()
        form = form_of_post(posted)
        count, errors = await self._count(console, form)
        errors.pop("name", None)  # the name does not change the count
        if is_htmx(request):
            # 200 even for bad filters: htmx swaps only successful answers, and the count says what is wrong.
            return render(console, "mailings_segment_count.html", count=count, count_errors=errors)
        segment_id = _id(str(posted.get("segment_id") or "")) or None
        return await self._segment_page(
            console, form, segment_id=segment_id, errors=errors, count=count, status_code=422 if errors else 200
        )

    async def _save_segment(
        self, request: Request[Any, Any, Any], console: Console, segment_id: int | None
    ) -> Response[str]:
        form = form_of_post(await request.form())
        filters, own = filters_of(form, zone_of(console.user.timezone))
        try:
            if own:
                raise InvalidInput("The segment has invalid filters.", errors=own)
            write = SegmentWrite(name=form.name, filters=filters)
            saved = await services.save_segment(console.user, write, origin=console.origin(), segment_id=segment_id)
        except InvalidInput as problem:
            errors = field_errors(console, problem, SEGMENT_ERRORS)
            return await self._segment_page(console, form, segment_id=segment_id, errors=errors, status_code=422)
        return redirect(console, request, console.url(f"/mailings/segments/{saved.id}?saved=1"))

    @post("/mailings/segments", opt=PUBLIC)
    async def create_segment(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "create", MODULE)
        return await self._save_segment(request, console, None)

    @post("/mailings/segments/{segment_id:int}", opt=PUBLIC)
    async def update_segment(
        self, request: Request[Any, Any, Any], company: FromPath[str], segment_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "update", MODULE)
        return await self._save_segment(request, console, segment_id)

    # ------------------------------------------------------------ templates

    async def _template_page(
        self,
        console: Console,
        form: dict[str, str],
        *,
        template_id: int | None,
        errors: dict[str, str] | None = None,
        preview: Preview | None = None,
        saved: bool = False,
        status_code: int = 200,
    ) -> Response[str]:
        action = "update" if template_id else "create"
        return render(
            console,
            "mailings_template.html",
            status_code=status_code,
            form=form,
            template_id=template_id,
            errors=errors or {},
            preview=preview,
            saved=saved,
            variables=VARIABLE_NAMES,
            fields=TEMPLATE_FIELDS,
            oob=False,
            may_save=console.may("mailings", action, MODULE),
        )

    @get("/mailings/templates/new", opt=PUBLIC)
    async def new_template(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "create", MODULE)
        form = {"name": "", "subject": "", "text": console.texts("mailings.default_text"), "html": ""}
        return await self._template_page(console, form, template_id=None)

    @get("/mailings/templates/{template_id:int}", opt=PUBLIC)
    async def template(
        self, request: Request[Any, Any, Any], company: FromPath[str], template_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        found = await services.get_template(console.user, template_id)
        form = {"name": found.name, "subject": found.subject, "text": found.text, "html": found.html or ""}
        preview, errors = await _preview(console, form)
        return await self._template_page(
            console,
            form,
            template_id=template_id,
            preview=preview,
            errors=errors,
            saved=bool(request.query_params.get("saved")),
        )

    @post("/mailings/templates/preview", opt=PUBLIC)
    async def preview(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "read", MODULE)
        posted = await request.form()
        form = {key: str(posted.get(key) or "") for key in ("name", "subject", "text", "html")}
        preview, errors = await _preview(console, form)
        if is_htmx(request):
            # Always 200: htmx swaps only successful answers; the errors go next to their fields.
            return render(
                console, "mailings_preview.html", preview=preview, errors=errors, fields=TEMPLATE_FIELDS, oob=True
            )
        template_id = _id(str(posted.get("template_id") or "")) or None
        return await self._template_page(
            console, form, template_id=template_id, preview=preview, errors=errors, status_code=422 if errors else 200
        )

    async def _save_template(
        self, request: Request[Any, Any, Any], console: Console, template_id: int | None
    ) -> Response[str]:
        posted = await request.form()
        form = {key: str(posted.get(key) or "") for key in ("name", "subject", "text", "html")}
        write = TemplateWrite(name=form["name"], subject=form["subject"], text=form["text"], html=form["html"] or None)
        try:
            saved = await services.save_template(console.user, write, origin=console.origin(), template_id=template_id)
        except InvalidInput as problem:
            errors = _template_errors(console, problem)
            return await self._template_page(console, form, template_id=template_id, errors=errors, status_code=422)
        return redirect(console, request, console.url(f"/mailings/templates/{saved.id}?saved=1"))

    @post("/mailings/templates", opt=PUBLIC)
    async def create_template(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "create", MODULE)
        return await self._save_template(request, console, None)

    @post("/mailings/templates/{template_id:int}", opt=PUBLIC)
    async def update_template(
        self, request: Request[Any, Any, Any], company: FromPath[str], template_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "mailings", "update", MODULE)
        return await self._save_template(request, console, template_id)


# The template service's problems (crm/tenants/mailings/rendering.py), in the user's words.
_TEMPLATE_PROBLEMS = (
    (re.compile(r"uses the unknown variable '(?P<name>[^']+)'"), "mailings.error.unknown_variable"),
    (re.compile(r"is not a valid template: (?P<detail>.+)"), "mailings.error.syntax"),
    (re.compile(r"reaches for something templates may not use"), "mailings.error.unsafe"),
    (re.compile(r"must be one line"), "mailings.error.one_line"),
    (re.compile(r"(?:fails to render|uses an undefined variable): (?P<detail>.+)"), "mailings.error.render"),
)


def _template_errors(console: Console, problem: InvalidInput) -> dict[str, str]:
    """One message per field: the template problems the page knows in the user's language,
    the others as the service words them."""
    shown = field_errors(console, problem, TEMPLATE_ERRORS)
    known = ", ".join(VARIABLE_NAMES)
    worded: dict[str, list[str]] = {}
    for error in problem.errors:
        for pattern, key in _TEMPLATE_PROBLEMS:
            if match := pattern.search(error.detail):
                worded.setdefault(error.field, []).append(console.texts(key, known=known, **match.groupdict()))
                break
        else:
            worded.setdefault(error.field, []).append(shown.get(error.field, error.detail))
    return {field: " ".join(dict.fromkeys(messages)) for field, messages in worded.items()} or shown


async def _preview(console: Console, form: dict[str, str]) -> tuple[Preview | None, dict[str, str]]:
    """The template of the form rendered for a sample client, or its problems by field."""
    try:
        preview = await services.preview_draft(console.user, form["subject"], form["text"], form["html"] or None)
    except InvalidInput as problem:
        return None, _template_errors(console, problem)
    return preview, {}


def _id(value: str) -> int:
    """A posted id; 0 (no such row) when it is not one."""
    try:
        number = int(value)
    except ValueError:
        return 0
    return number if 1 <= number <= MAX_ID else 0


CONTROLLERS: list[type] = [MailingPagesController]
