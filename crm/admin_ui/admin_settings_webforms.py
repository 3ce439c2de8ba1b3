"""The web forms settings page: the company's forms with their keys and embed snippets;
adding a form, changing it, switching it off or on, giving it a new key — through the
services the web forms API uses (``settings.read`` to look, ``settings.update`` to change,
the edition's ``webforms`` module)."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.admin_forms import after_save, ensure_allowed, field_errors, notice_of, settings_tabs, text
from crm.admin_ui.console import Console, PageNotFound, open_console, render
from crm.admin_ui.texts import Texts, add_texts
from crm.platform.errors import InvalidInput
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.tenants.leads.services import MAX_NAME, MAX_NOTE
from crm.tenants.leads.web_form_schemas import WebFormCreate, WebFormUpdate
from crm.tenants.leads.web_forms import (
    MAX_FORM_NAME,
    MODULE,
    action_url,
    create_web_form,
    list_web_forms,
    responsible_choices,
    rotate_web_form_key,
    update_web_form,
)
from crm.tenants.tasks.reads import zone_of

PATH = "/admin/settings/webforms"
ORIGINS = "allowed_origins"

add_texts(
    {
        "ru": {
            "settings.tab.webforms": "Веб-формы",
            "settings.webforms.title": "Веб-формы",
            "settings.webforms.intro": "Форма на сайте компании: заявка посетителя становится лидом с источником "
            "«веб-форма». Вставьте код формы в страницу сайта; оформите её стилями сайта.",
            "settings.webforms.none": "Форм пока нет.",
            "settings.webforms.new": "Новая форма",
            "settings.webforms.name": "Название",
            "settings.webforms.responsible": "Кому отдавать лиды",
            "settings.webforms.unassigned": "Никому (лиды без ответственного)",
            "settings.webforms.origins": "Сайты, с которых можно отправлять форму",
            "settings.webforms.origins_hint": "По одному адресу в строке, например https://example.ru. "
            "Пусто — любой сайт.",
            "settings.webforms.any_site": "любой сайт",
            "settings.webforms.key": "Ключ",
            "settings.webforms.created": "Создана",
            "settings.webforms.active": "Работает",
            "settings.webforms.inactive": "Выключена: отправки отвечают 404",
            "settings.webforms.create": "Создать форму",
            "settings.webforms.edit": "Изменить",
            "settings.webforms.rotate": "Новый ключ",
            "settings.webforms.rotate_confirm": "Старый ключ перестанет работать сразу. Код на сайте нужно будет "
            "заменить. Продолжить?",
            "settings.webforms.deactivate": "Выключить",
            "settings.webforms.activate": "Включить",
            "settings.webforms.snippet": "Код для сайта",
            "settings.webforms.snippet_hint": "Скопируйте в HTML страницы. Скрытое поле website — ловушка для "
            "ботов: люди его не видят, заявки с заполненным полем не сохраняются.",
            "settings.webforms.line": "строка {line}: {detail}",
            "webform.field.name": "Имя",
            "webform.field.phone": "Телефон",
            "webform.field.email": "Эл. почта",
            "webform.field.company": "Компания",
            "webform.field.comment": "Комментарий",
            "webform.field.send": "Отправить",
            "webform.snippet.honeypot": "Ловушка для ботов: оставьте пустым и скрытым",
            "webform.snippet.redirect": "Необязательно: страница вашего сайта, куда вернуть посетителя",
        },
        "en": {
            "settings.tab.webforms": "Web forms",
            "settings.webforms.title": "Web forms",
            "settings.webforms.intro": "A form on the company's website: a visitor's request becomes a lead with "
            "the source “web form”. Paste the form's code into a page of the site and style it like the site.",
            "settings.webforms.none": "No forms yet.",
            "settings.webforms.new": "New form",
            "settings.webforms.name": "Name",
            "settings.webforms.responsible": "Who gets its leads",
            "settings.webforms.unassigned": "Nobody (leads stay unassigned)",
            "settings.webforms.origins": "Sites allowed to post the form",
            "settings.webforms.origins_hint": "One address a line, e.g. https://example.com. Empty: any site.",
            "settings.webforms.any_site": "any site",
            "settings.webforms.key": "Key",
            "settings.webforms.created": "Created",
            "settings.webforms.active": "On",
            "settings.webforms.inactive": "Off: posts answer 404",
            "settings.webforms.create": "Create the form",
            "settings.webforms.edit": "Change",
            "settings.webforms.rotate": "New key",
            "settings.webforms.rotate_confirm": "The old key stops working at once; the code on the site must be "
            "replaced. Continue?",
            "settings.webforms.deactivate": "Switch off",
            "settings.webforms.activate": "Switch on",
            "settings.webforms.snippet": "Code for the site",
            "settings.webforms.snippet_hint": "Copy it into the page's HTML. The hidden website field is a trap for "
            "bots: people do not see it, and requests that fill it in are not stored.",
            "settings.webforms.line": "line {line}: {detail}",
            "webform.field.name": "Name",
            "webform.field.phone": "Phone",
            "webform.field.email": "E-mail",
            "webform.field.company": "Company",
            "webform.field.comment": "Comment",
            "webform.field.send": "Send",
            "webform.snippet.honeypot": "A trap for bots: keep it empty and hidden",
            "webform.snippet.redirect": "Optional: a page of your site to send the visitor back to",
        },
    }
)


def embed_snippet(url: str, texts: Texts) -> str:
    """The HTML a company pastes into its site: a plain form that works without scripts,
    with the honeypot field moved off-screen by CSS (not ``display: none``, which some bots
    skip) and out of the keyboard's way."""
    label = {name: escape(texts(f"webform.field.{name}")) for name in ("name", "phone", "email", "company", "comment")}
    return "\n".join(
        (
            f'<form action="{escape(url)}" method="post" accept-charset="utf-8">',
            f'  <p><label>{label["name"]} <input name="name" required maxlength="{MAX_NAME}"'
            ' autocomplete="name"></label></p>',
            f'  <p><label>{label["phone"]} <input name="phone" type="tel" maxlength="32"'
            ' autocomplete="tel"></label></p>',
            f'  <p><label>{label["email"]} <input name="email" type="email" maxlength="320"'
            ' autocomplete="email"></label></p>',
            f'  <p><label>{label["company"]} <input name="company" maxlength="{MAX_NAME}"'
            ' autocomplete="organization"></label></p>',
            f'  <p><label>{label["comment"]} <textarea name="comment" maxlength="{MAX_NOTE}"></textarea></label></p>',
            f"  <!-- {escape(texts('webform.snippet.honeypot'))} -->",
            '  <p style="position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden" aria-hidden="true">',
            '    <label>Website <input name="website" tabindex="-1" autocomplete="off"></label>',
            "  </p>",
            f"  <!-- {escape(texts('webform.snippet.redirect'))}:",
            '  <input type="hidden" name="redirect" value="https://example.com/thanks"> -->',
            f'  <button type="submit">{escape(texts("webform.field.send"))}</button>',
            "</form>",
        )
    )


def _origins(raw: str) -> list[str]:
    """The textarea's sites: one a line (commas and spaces separate too)."""
    return [part for part in raw.replace(",", " ").split() if part]


def _errors(console: Console, problem: InvalidInput) -> dict[str, str]:
    """The refusal's errors by field; a bad site is shown at the sites' field with its line."""
    errors: dict[str, str] = {}
    for field, detail in field_errors(problem).items():
        if field.startswith(f"{ORIGINS}."):
            line = int(field.rpartition(".")[2]) + 1
            errors.setdefault(ORIGINS, console.texts("settings.webforms.line", line=line, detail=detail))
        else:
            errors.setdefault(field, detail)
    return errors


def _posted(form: Any) -> dict[str, str]:
    return {"name": text(form, "name"), "responsible_id": text(form, "responsible_id"), ORIGINS: text(form, ORIGINS)}


def _responsible(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) <= MAX_ID else None


async def _page(
    console: Console,
    *,
    new: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    editing: int | None = None,
    edited: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response[str]:
    """The page; ``new``/``errors`` refill the new form after a refusal, or with ``editing``
    (a form's id) and ``edited`` that form's change form."""
    forms = await list_web_forms(console.user)
    users = await responsible_choices(console.user)
    names = {user["id"]: user["name"] for user in users}
    zone = zone_of(console.user.timezone)
    public_url = console.services.settings.web.public_url
    shown = [
        {
            **form,
            "responsible": names.get(form["responsible_id"]),
            "created": form["created_at"].astimezone(zone).strftime("%d.%m.%Y %H:%M"),
            "snippet": embed_snippet(action_url(public_url, form["public_key"]), console.texts),
            "values": edited
            if editing == form["id"] and edited is not None
            else {
                "name": form["name"],
                "responsible_id": str(form["responsible_id"] or ""),
                ORIGINS: "\n".join(form["allowed_origins"]),
            },
            "errors": (errors or {}) if editing == form["id"] else {},
        }
        for form in forms
    ]
    return render(
        console,
        "admin_settings_webforms.html",
        status_code=status,
        tabs=settings_tabs(console),
        forms=shown,
        users=users,
        new=new or {"name": "", "responsible_id": "", ORIGINS: ""},
        errors=(errors or {}) if editing is None else {},
        page_errors=errors or {},
        notice=notice,
        can_edit=console.may("settings", "update", MODULE),
        max_name=MAX_FORM_NAME,
    )


class WebFormsPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def web_forms_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "read", MODULE)
        return await _page(console, notice=notice_of(console, request))

    @post(PATH, opt=PUBLIC)
    async def create_form(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update", MODULE)
        values = _posted(await request.form())
        data = WebFormCreate(
            name=values["name"],
            responsible_id=_responsible(values["responsible_id"]),
            allowed_origins=_origins(values[ORIGINS]),
        )
        try:
            await create_web_form(console.user, data, origin=console.origin())
        except InvalidInput as problem:
            return await _page(console, new=values, errors=_errors(console, problem), status=422)
        return await self._saved(console, request)

    @post(f"{PATH}/{{form_id:int}}/edit", opt=PUBLIC)
    async def edit_form(
        self, request: Request[Any, Any, Any], company: FromPath[str], form_id: FromPath[int]
    ) -> Response[Any]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update", MODULE)
        values = _posted(await request.form())
        data = WebFormUpdate(
            name=values["name"],
            responsible_id=_responsible(values["responsible_id"]),
            allowed_origins=_origins(values[ORIGINS]),
        )
        try:
            await update_web_form(console.user, form_id, data, origin=console.origin())
        except InvalidInput as problem:
            errors = _errors(console, problem)
            return await _page(console, editing=form_id, edited=values, errors=errors, status=422)
        return await self._saved(console, request)

    @post(f"{PATH}/{{form_id:int}}/{{switch:str}}", opt=PUBLIC)
    async def switch_form(
        self, request: Request[Any, Any, Any], company: FromPath[str], form_id: FromPath[int], switch: FromPath[str]
    ) -> Response[Any]:
        """``activate``, ``deactivate`` or ``rotate`` (a new key)."""
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update", MODULE)
        if switch == "rotate":
            await rotate_web_form_key(console.user, form_id, origin=console.origin())
        elif switch in ("activate", "deactivate"):
            change = WebFormUpdate(is_active=switch == "activate")
            await update_web_form(console.user, form_id, change, origin=console.origin())
        else:
            raise PageNotFound()
        return await self._saved(console, request)

    @staticmethod
    async def _saved(console: Console, request: Request[Any, Any, Any]) -> Response[Any]:
        async def show(notice: str) -> Response[str]:
            return await _page(console, notice=notice)

        return await after_save(console, request, PATH, show)


CONTROLLERS: list[type] = [WebFormsPageController]
