"""The department tree page: add a department, rename or move one, delete an empty one —
with the rules of crm/tenants/users/departments.py, the same the API applies."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from crm.admin_ui.admin_form_errors import form_errors
from crm.admin_ui.console import Console, open_console, redirect, render
from crm.admin_ui.navigation import register_page
from crm.platform.errors import Conflict, InvalidInput
from crm.platform.listing import MAX_ID
from crm.platform.security import PUBLIC
from crm.platform.tenancy import tenant_scope
from crm.tenants.users.departments import DepartmentNode, delete_department, department_tree, update_department
from crm.tenants.users.services import create_department

FORM_ERRORS = {
    "name": "admin_departments.error.name",
    "parent_id:is inside": "admin_departments.error.cycle",
    "parent_id:cannot be": "admin_departments.error.cycle",
    "parent_id": "admin_departments.error.parent",
    "department_id:has departments": "admin_departments.error.has_children",
    "department_id:has users": "admin_departments.error.has_users",
}
NOTICES = {
    "created": "admin_departments.notice.created",
    "saved": "common.saved",
    "deleted": "admin_departments.notice.deleted",
}


def _parent(value: Any) -> int | None:
    """The parent field: empty is the top level; a non-id is 0, which no department has."""
    text = str(value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() and int(text) <= MAX_ID else 0


def below(tree: list[DepartmentNode], department_id: int) -> set[int]:
    """The department and every one under it: where it cannot be moved."""
    inside = {department_id}
    for node in tree:  # tree order: a parent always comes before its children
        if node.parent_id in inside:
            inside.add(node.id)
    return inside


class DepartmentPagesController(Controller):
    path = "/{company:str}/admin/departments"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def tree(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        key = NOTICES.get(str(request.query_params.get("done") or ""))
        return await self._page(console, notice=console.texts(key) if key else None)

    @post("/", opt=PUBLIC)
    async def create(self, request: Request[Any, Any, Any], company: FromPath[str]) -> Response[str]:
        console = await open_console(request, company)
        form = await request.form()
        name, parent = str(form.get("name") or ""), _parent(form.get("parent_id"))
        try:
            async with tenant_scope(console.tenant):
                department_id = await create_department(console.user, name, parent, origin=console.origin())
        except InvalidInput as problem:
            errors = form_errors(console.texts, problem, FORM_ERRORS)
            return await self._page(
                console, status_code=422, new={"name": name, "parent_id": parent}, new_errors=errors
            )
        return redirect(console, request, console.url(f"/admin/departments?done=created#department-{department_id}"))

    @post("/{department_id:int}", opt=PUBLIC)
    async def update(
        self, request: Request[Any, Any, Any], company: FromPath[str], department_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        form = await request.form()
        changes = {"name": str(form.get("name") or ""), "parent_id": _parent(form.get("parent_id"))}
        try:
            async with tenant_scope(console.tenant):
                await update_department(console.user, department_id, changes, origin=console.origin())
        except InvalidInput as problem:
            errors = {department_id: form_errors(console.texts, problem, FORM_ERRORS)}
            return await self._page(console, status_code=422, errors=errors, edited={department_id: changes})
        return redirect(console, request, console.url(f"/admin/departments?done=saved#department-{department_id}"))

    @post("/{department_id:int}/delete", opt=PUBLIC)
    async def delete(
        self, request: Request[Any, Any, Any], company: FromPath[str], department_id: FromPath[int]
    ) -> Response[str]:
        console = await open_console(request, company)
        try:
            async with tenant_scope(console.tenant):
                await delete_department(console.user, department_id, origin=console.origin())
        except Conflict as problem:
            errors = {department_id: form_errors(console.texts, problem, FORM_ERRORS)}
            return await self._page(console, status_code=409, errors=errors)
        return redirect(console, request, console.url("/admin/departments?done=deleted"))

    @staticmethod
    async def _page(
        console: Console,
        *,
        status_code: int = 200,
        notice: str | None = None,
        errors: dict[int, dict[str, str]] | None = None,
        edited: dict[int, dict[str, Any]] | None = None,
        new: dict[str, Any] | None = None,
        new_errors: dict[str, str] | None = None,
    ) -> Response[str]:
        async with tenant_scope(console.tenant):
            tree = await department_tree(console.user)
        return render(
            console,
            "admin_departments.html",
            status_code=status_code,
            tree=tree,
            below=below,
            notice=notice,
            errors=errors or {},
            edited=edited or {},
            new=new or {"name": "", "parent_id": None},
            new_errors=new_errors or {},
        )


register_page("/admin/departments")
