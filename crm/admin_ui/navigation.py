"""The console's menu: each entry shown only when the edition has its module and the role
may read what it lists — the same rules the API applies to the pages' data."""

from __future__ import annotations

from dataclasses import dataclass

from crm.admin_ui.console import ENVIRONMENT, Console


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    entity: str
    action: str = "read"
    module: str | None = None
    admin: bool = False


NAV = (
    NavItem("/clients", "nav.clients", "clients", module="clients"),
    NavItem("/deals", "nav.deals", "deals", module="deals"),
    NavItem("/tasks", "nav.tasks", "tasks", module="tasks"),
    NavItem("/planner", "nav.planner", "tasks", module="tasks"),
    NavItem("/mailings", "nav.mailings", "mailings", module="mailings"),
    NavItem("/import", "nav.import", "imports", action="create", module="import_export"),
    NavItem("/telegram", "nav.telegram", "clients", module="bot"),
    NavItem("/admin/users", "nav.users", "users", admin=True),
    NavItem("/admin/departments", "nav.departments", "departments", admin=True),
    NavItem("/admin/roles", "nav.roles", "roles", admin=True),
    NavItem("/admin/audit", "nav.audit", "audit", admin=True),
    NavItem("/admin/billing", "nav.billing", "billing", admin=True),
    NavItem("/admin/settings", "nav.settings", "settings", admin=True),
)
# Pages that exist; the menu lists only these (areas register theirs as they land).
AVAILABLE: set[str] = set()


def register_page(path: str) -> None:
    AVAILABLE.add(path)


def nav_items(console: Console) -> list[NavItem]:
    return [item for item in NAV if item.path in AVAILABLE and console.may(item.entity, item.action, item.module)]


def request_path(console: Console) -> str:
    return console.request.url.path


ENVIRONMENT.globals.update(nav_items=nav_items, request_path=request_path)
