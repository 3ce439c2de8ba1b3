"""The import wizard: upload a CSV file of clients, check how its columns map to fields,
start, and watch the progress (polled by htmx every second; a Refresh link without it).

The file is uploaded once: the import services keep it as a draft of its author between
the upload and the start (crm/tenants/imports/services.py), so the pages stay stateless.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from crm.admin_ui.console import Console, open_console, redirect, render, require
from crm.admin_ui.navigation import register_page
from crm.admin_ui.texts import add_texts
from crm.admin_ui.work_forms import field_errors
from crm.platform.errors import Conflict, InvalidInput
from crm.platform.security import PUBLIC
from crm.platform.tenancy import read_in_tenant
from crm.tenants.imports import services
from crm.tenants.imports.csvfile import CLIENT_FIELDS
from crm.tenants.imports.runner import DUPLICATE_RULES
from crm.tenants.imports.schemas import ImportPreview, ImportRead
from crm.tenants.reminders.schedule import zone_of

MODULE = "import_export"
RECENT = 10
SHOWN_ERRORS = 100
RUNNING = ("queued", "running")
KNOWN_ERRORS = {
    "file": "import.error.file",
    "mapping": "import.error.mapping",
    "on_duplicate": "import.error.on_duplicate",
}

register_page("/import")

add_texts(
    {
        "ru": {
            "import.title": "Импорт клиентов",
            "import.intro": "Загрузите файл CSV (из Excel: «Сохранить как» → CSV). Подходят кодировки UTF-8 "
            "и Windows-1251, разделители — запятая, точка с запятой или табуляция.",
            "import.file": "Файл CSV",
            "import.on_duplicate": "Если клиент с таким телефоном, e-mail или ИНН уже есть",
            "import.rule.skip": "пропустить строку",
            "import.rule.update": "обновить клиента",
            "import.rule.create": "всё равно создать нового",
            "import.upload": "Загрузить и проверить колонки",
            "import.recent": "Недавние импорты",
            "import.mapping_title": "Колонки файла «{filename}»",
            "import.mapping_intro": "Строк в файле: {total}. Проверьте, в какое поле попадёт каждая колонка.",
            "import.column": "Колонка",
            "import.field": "Поле",
            "import.sample": "Примеры",
            "import.skip_column": "— не загружать —",
            "import.start": "Начать импорт",
            "import.again": "Загрузить другой файл",
            "import.job_title": "Импорт «{filename}»",
            "import.processed": "Обработано {processed} из {total}",
            "import.created": "Создано",
            "import.updated": "Обновлено",
            "import.unchanged": "Без изменений",
            "import.skipped": "Пропущено (дубли)",
            "import.errors": "С ошибками",
            "import.problems": "Ошибки в строках",
            "import.row": "Строка",
            "import.problem": "Что не так",
            "import.more_problems": "Показаны первые {count} ошибок.",
            "import.cancel": "Остановить импорт",
            "import.cancelled_note": "Импорт остановлен; уже загруженные клиенты остались.",
            "import.status": "Состояние",
            "import.status.draft": "черновик",
            "import.status.queued": "в очереди",
            "import.status.running": "идёт",
            "import.status.done": "готово",
            "import.status.failed": "не удался",
            "import.status.cancelled": "остановлен",
            "import.when": "Когда",
            "import.error.file": "Не удалось прочитать файл: нужен непустой CSV до 50 МБ.",
            "import.error.mapping": "Укажите колонку с названием или именем клиента.",
            "import.error.on_duplicate": "Ваша роль не позволяет обновлять клиентов: "
            "выберите «пропустить» или «создать».",
            "import.field.name": "Название / имя",
            "import.field.kind": "Тип (компания / человек)",
            "import.field.phones": "Телефоны",
            "import.field.emails": "E-mail",
            "import.field.tax_id": "ИНН",
            "import.field.status": "Статус",
            "import.field.source": "Источник",
            "import.field.tags": "Теги",
            "import.field.responsible": "Ответственный (e-mail)",
            "import.field.birthday": "Дата рождения",
            "import.field.address": "Адрес",
        },
        "en": {
            "import.title": "Import clients",
            "import.intro": "Upload a CSV file (from Excel: Save As → CSV). UTF-8 and Windows-1251 encodings "
            "work, separated by commas, semicolons or tabs.",
            "import.file": "CSV file",
            "import.on_duplicate": "When a client with the same phone, e-mail or tax ID exists",
            "import.rule.skip": "skip the row",
            "import.rule.update": "update that client",
            "import.rule.create": "create a new one anyway",
            "import.upload": "Upload and check the columns",
            "import.recent": "Recent imports",
            "import.mapping_title": "Columns of “{filename}”",
            "import.mapping_intro": "Rows in the file: {total}. Check which field each column goes to.",
            "import.column": "Column",
            "import.field": "Field",
            "import.sample": "Examples",
            "import.skip_column": "— do not import —",
            "import.start": "Start the import",
            "import.again": "Upload another file",
            "import.job_title": "Import of “{filename}”",
            "import.processed": "{processed} of {total} processed",
            "import.created": "Created",
            "import.updated": "Updated",
            "import.unchanged": "Unchanged",
            "import.skipped": "Skipped (duplicates)",
            "import.errors": "With errors",
            "import.problems": "Problems in rows",
            "import.row": "Row",
            "import.problem": "What is wrong",
            "import.more_problems": "The first {count} problems are shown.",
            "import.cancel": "Stop the import",
            "import.cancelled_note": "The import is stopped; the clients imported so far stay.",
            "import.status": "Status",
            "import.status.draft": "draft",
            "import.status.queued": "queued",
            "import.status.running": "running",
            "import.status.done": "done",
            "import.status.failed": "failed",
            "import.status.cancelled": "stopped",
            "import.when": "When",
            "import.error.file": "The file cannot be read: it must be a non-empty CSV file of at most 50 MB.",
            "import.error.mapping": "Choose the column that holds the client's name.",
            "import.error.on_duplicate": "Your role may not update clients: choose skip or create.",
            "import.field.name": "Name",
            "import.field.kind": "Kind (company / person)",
            "import.field.phones": "Phones",
            "import.field.emails": "E-mail",
            "import.field.tax_id": "Tax ID",
            "import.field.status": "Status",
            "import.field.source": "Source",
            "import.field.tags": "Tags",
            "import.field.responsible": "Responsible (e-mail)",
            "import.field.birthday": "Birthday",
            "import.field.address": "Address",
        },
    }
)


def _may_upload(console: Console) -> bool:
    return console.may("imports", "create", MODULE) and console.may("clients", "create")


def _require_upload(console: Console) -> None:
    require(console, "imports", "create", MODULE)
    require(console, "clients", "create", None)


def _rules(console: Console) -> list[str]:
    """The duplicate rules the role may pick (``update`` changes clients)."""
    return [rule for rule in DUPLICATE_RULES if rule != "update" or console.may("clients", "update")]


async def _field_labels(console: Console, fields: list[str]) -> list[tuple[str, str]]:
    """(field, label) for the mapping's choices; custom fields by the company's names."""
    custom = await read_in_tenant(console.tenant, services.custom_client_fields)
    labels = []
    for field in fields:
        if field.startswith("custom."):
            names = custom.get(field.removeprefix("custom."), {})
            labels.append((field, names.get(console.texts.locale) or field.removeprefix("custom.")))
        else:
            labels.append((field, console.texts(f"import.field.{field}")))
    return labels


class ImportPagesController(Controller):
    path = "/{company:str}"
    include_in_schema = False

    async def _start_page(
        self,
        console: Console,
        *,
        errors: dict[str, str] | None = None,
        on_duplicate: str = "skip",
        status_code: int = 200,
    ) -> Response[str]:
        recent: list[ImportRead] = []
        if console.may("imports", "read", MODULE):
            recent = (await services.list_imports(console.user, cursor=None, limit=RECENT)).items
        return render(
            console,
            "import_start.html",
            status_code=status_code,
            may_upload=_may_upload(console),
            rules=_rules(console),
            on_duplicate=on_duplicate,
            errors=errors or {},
            recent=recent,
            zone=zone_of(console.user.timezone),
        )

    @get("/import", opt=PUBLIC)
    async def start_page(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        if not console.may("imports", "read", MODULE):
            _require_upload(console)
        return await self._start_page(console)

    @post("/import", opt=PUBLIC)
    async def upload(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        _require_upload(console)
        form = await request.form()
        on_duplicate = str(form.get("on_duplicate") or "skip")
        upload = form.get("file")
        content = await upload.read() if isinstance(upload, UploadFile) else b""
        filename = upload.filename if isinstance(upload, UploadFile) else None
        try:
            draft_id, _ = await services.save_draft(
                console.user, filename=filename, content=content, on_duplicate=on_duplicate
            )
        except InvalidInput as problem:
            errors = field_errors(console, problem, KNOWN_ERRORS)
            return await self._start_page(console, errors=errors, on_duplicate=on_duplicate, status_code=422)
        return redirect(console, request, console.url(f"/import/drafts/{draft_id}"))

    async def _mapping_page(
        self,
        console: Console,
        draft_id: int,
        *,
        chosen: dict[str, str] | None = None,
        on_duplicate: str | None = None,
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[str]:
        draft, preview = await services.draft_preview(console.user, draft_id)
        return render(
            console,
            "import_mapping.html",
            status_code=status_code,
            draft_id=draft_id,
            filename=draft["filename"],
            preview=preview,
            samples=_samples(preview),
            mapping=chosen if chosen is not None else preview.mapping,
            fields=await _field_labels(console, preview.fields),
            rules=_rules(console),
            on_duplicate=on_duplicate or draft["on_duplicate"],
            errors=errors or {},
        )

    @get("/import/drafts/{draft_id:int}", opt=PUBLIC)
    async def mapping_page(
        self, request: Request[Any, Any, Any], company: FromPath[str], draft_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        _require_upload(console)
        return await self._mapping_page(console, draft_id)

    @post("/import/drafts/{draft_id:int}", opt=PUBLIC)
    async def start(
        self, request: Request[Any, Any, Any], company: FromPath[str], draft_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        _require_upload(console)
        form = await request.form()
        on_duplicate = str(form.get("on_duplicate") or "skip")
        _, preview = await services.draft_preview(console.user, draft_id)
        # Columns are posted by position (headers may hold any characters); an empty choice skips one.
        chosen = {
            column: str(form.get(f"column_{index}") or "")
            for index, column in enumerate(preview.columns)
            if form.get(f"column_{index}")
        }
        try:
            job = await services.start_draft(
                console.user, draft_id, mapping=chosen, on_duplicate=on_duplicate, origin=console.origin()
            )
        except InvalidInput as problem:
            errors = field_errors(console, problem, KNOWN_ERRORS)
            return await self._mapping_page(
                console, draft_id, chosen=chosen, on_duplicate=on_duplicate, errors=errors, status_code=422
            )
        return redirect(console, request, console.url(f"/import/{job.id}"))

    @get("/import/{import_id:int}", opt=PUBLIC)
    async def job_page(
        self, request: Request[Any, Any, Any], company: FromPath[str], import_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "imports", "read", MODULE)
        job = await services.get_import(console.user, import_id)
        return render(console, "import_job.html", **_job_context(console, job))

    @get("/import/{import_id:int}/progress", opt=PUBLIC)
    async def progress(
        self, request: Request[Any, Any, Any], company: FromPath[str], import_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "imports", "read", MODULE)
        job = await services.get_import(console.user, import_id)
        return render(console, "import_progress.html", **_job_context(console, job))

    @post("/import/{import_id:int}/cancel", opt=PUBLIC)
    async def cancel(
        self, request: Request[Any, Any, Any], company: FromPath[str], import_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        require(console, "imports", "create", MODULE)
        try:
            await services.cancel_import(console.user, import_id, origin=console.origin())
        except Conflict:
            pass  # finished meanwhile: the page shows how it ended
        return redirect(console, request, console.url(f"/import/{import_id}"))


def _samples(preview: ImportPreview) -> list[list[str]]:
    """Each column's values in the preview rows (rows may be shorter than the header)."""
    return [
        [row[index] for row in preview.rows if index < len(row) and row[index].strip()]
        for index in range(len(preview.columns))
    ]


def _field_labels_of_problems(console: Console) -> dict[str, str]:
    """The fields a row's problem names, in the user's words (custom fields keep their key)."""
    labels = {field: console.texts(f"import.field.{field}") for field in CLIENT_FIELDS}
    # Duplicates are reported on the key that matched.
    labels.update(phone=labels["phones"], email=labels["emails"], file=console.texts("import.file"))
    return labels


def _job_context(console: Console, job: ImportRead) -> dict[str, Any]:
    return {
        "field_labels": _field_labels_of_problems(console),
        "job": job,
        "running": job.status in RUNNING,
        "problems": job.errors[:SHOWN_ERRORS],
        "shown_errors": SHOWN_ERRORS,
        "may_cancel": job.status in RUNNING and console.may("imports", "create", MODULE),
        "zone": zone_of(console.user.timezone),
    }


CONTROLLERS: list[type] = [ImportPagesController]
