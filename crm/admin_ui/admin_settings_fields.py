"""The custom fields editor: the company's own typed fields on clients, deals and leads.

Like the API's PUT, the page saves the whole list at once through
:func:`replace_custom_fields`, so the same rules hold: keys unique per entity, choices for
choice fields only, and a field holding values keeps its type (409). Choices are typed one
per line as ``key | Russian name | English name``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath

from crm.admin_ui.admin_forms import (
    MAX_ROWS,
    after_save,
    apply_op,
    blank,
    checked,
    ensure_allowed,
    field_errors,
    notice_of,
    revision_of,
    settings_tabs,
    status_of,
    text,
)
from crm.admin_ui.console import Console, open_console, render
from crm.admin_ui.texts import add_texts
from crm.platform.editions import CUSTOM_FIELD_TYPES
from crm.platform.errors import Conflict, InvalidInput
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.configuration.custom_fields_api import (
    TABLES,
    WITH_CHOICES,
    CustomFieldDefinition,
    replace_custom_fields,
)
from crm.tenants.configuration.settings import setting

PATH = "/admin/settings/fields"
MODULE = "custom_fields"
CHOICE_FIELD = re.compile(r"^(\d+)\.choices\.(\d+)\.")

add_texts(
    {
        "ru": {
            "settings.fields.title": "Дополнительные поля",
            "settings.fields.intro": "Свои поля клиентов, сделок и лидов. Поле, в котором уже есть значения, "
            "не меняет тип; удалённое поле скрывается, а его значения остаются в записях.",
            "settings.fields.entity": "Где",
            "settings.fields.entity.client": "Клиенты",
            "settings.fields.entity.deal": "Сделки",
            "settings.fields.entity.lead": "Лиды",
            "settings.fields.type": "Тип",
            "settings.fields.type.text": "Текст",
            "settings.fields.type.number": "Число",
            "settings.fields.type.date": "Дата",
            "settings.fields.type.choice": "Выбор одного",
            "settings.fields.type.multi_choice": "Выбор нескольких",
            "settings.fields.type.boolean": "Да/нет",
            "settings.fields.required": "Обязательное",
            "settings.fields.choices": "Варианты (для выбора)",
            "settings.fields.choices_hint": "По одному в строке: ключ | название по-русски | название по-английски",
            "settings.fields.line": "строка {line}: {detail}",
        },
        "en": {
            "settings.fields.title": "Custom fields",
            "settings.fields.intro": "Fields of your own on clients, deals and leads. A field that holds values "
            "keeps its type; a removed field is hidden and its values stay on the records.",
            "settings.fields.entity": "On",
            "settings.fields.entity.client": "Clients",
            "settings.fields.entity.deal": "Deals",
            "settings.fields.entity.lead": "Leads",
            "settings.fields.type": "Type",
            "settings.fields.type.text": "Text",
            "settings.fields.type.number": "Number",
            "settings.fields.type.date": "Date",
            "settings.fields.type.choice": "One choice",
            "settings.fields.type.multi_choice": "Several choices",
            "settings.fields.type.boolean": "Yes/no",
            "settings.fields.required": "Required",
            "settings.fields.choices": "Choices (for choice fields)",
            "settings.fields.choices_hint": "One per line: key | Russian name | English name",
            "settings.fields.line": "line {line}: {detail}",
        },
    }
)


async def _stored() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = await setting("custom_fields", [])
    return fields


def choices_text(choices: list[dict[str, Any]]) -> str:
    """The choices as the form shows them: ``key | ru | en`` a line."""
    return "\n".join(
        f"{choice.get('key', '')} | {choice.get('names', {}).get('ru', '')} | {choice.get('names', {}).get('en', '')}"
        for choice in choices
    )


def parse_choices(raw: str) -> list[dict[str, Any]]:
    """``key | ru | en`` lines; a name left out repeats the one before it (or the key)."""
    choices = []
    for line in raw.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if not any(parts):
            continue
        key = parts[0]
        ru = parts[1] if len(parts) > 1 and parts[1] else key
        en = parts[2] if len(parts) > 2 and parts[2] else ru
        choices.append({"key": key, "names": {"ru": ru, "en": en}})
    return choices


def _posted_fields(form: FormMultiDict) -> list[dict[str, Any]]:
    posted = text(form, "count")
    count = min(int(posted), MAX_ROWS) if posted.isdigit() else 0
    rows = []
    for index in range(count):
        row: dict[str, Any] = {
            "entity": text(form, f"entity.{index}"),
            "key": text(form, f"key.{index}"),
            "names": {"ru": text(form, f"ru.{index}"), "en": text(form, f"en.{index}")},
            "type": text(form, f"type.{index}"),
            "required": checked(form, f"required.{index}"),
            "choices": parse_choices(str(form.get(f"choices.{index}") or "")),
        }
        rows.append(row)
    return rows


def _choice_errors(console: Console, errors: dict[str, str]) -> dict[str, str]:
    """A bad choice (``2.choices.1.key``) is shown on its field's choices box, by line."""
    shown: dict[str, str] = {}
    for field, detail in errors.items():
        match = CHOICE_FIELD.match(field)
        if match is None:
            shown.setdefault(field, detail)
            continue
        line = console.texts("settings.fields.line", line=int(match.group(2)) + 1, detail=detail)
        box = f"{match.group(1)}.choices"
        shown[box] = f"{shown[box]}; {line}" if box in shown else line
    return shown


async def _page(
    console: Console,
    *,
    rows: list[dict[str, Any]] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    stale: bool = False,
    status: int = 200,
) -> Response[str]:
    stored = await read_in_tenant(console.tenant, _stored)
    return render(
        console,
        "admin_settings_fields.html",
        status_code=status,
        tabs=settings_tabs(console),
        rows=stored if rows is None else rows,
        stored_keys={(row.get("entity"), row.get("key")) for row in stored},
        revision=revision_of(stored),
        errors=errors or {},
        notice=notice,
        stale=stale,
        can_edit=console.may("settings", "update"),
        entities=[(entity, console.texts(f"settings.fields.entity.{entity}")) for entity in TABLES],
        types=[(kind, console.texts(f"settings.fields.type.{kind}")) for kind in CUSTOM_FIELD_TYPES],
        with_choices=WITH_CHOICES,
        choices_text=choices_text,
    )


class CustomFieldsPageController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    @get(PATH, opt=PUBLIC)
    async def fields_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "read", MODULE)
        return await _page(console, notice=notice_of(console, request))

    @post(PATH, opt=PUBLIC)
    async def save_fields(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[Any]:
        console = await open_console(request, company)
        ensure_allowed(console, "settings", "update", MODULE)
        form = await request.form()
        rows = [row for row in apply_op(_posted_fields(form), text(form, "op")) if not blank(row)]
        # The service replaces the list in a transaction of its own; a list changed by
        # someone else since this form was shown is noticed just before.
        if revision_of(await read_in_tenant(console.tenant, _stored)) != text(form, "revision"):
            return await _page(console, stale=True, status=409)
        try:
            definitions = msgspec.convert(rows, list[CustomFieldDefinition])
            await replace_custom_fields(console.user, definitions, origin=console.origin())
        except (InvalidInput, Conflict) as problem:
            errors = _choice_errors(console, field_errors(problem))
            return await _page(console, rows=rows, errors=errors, status=status_of(problem))

        async def show(notice: str) -> Response[str]:
            return await _page(console, notice=notice)

        return await after_save(console, request, PATH, show)


CONTROLLERS: list[type] = [CustomFieldsPageController]
