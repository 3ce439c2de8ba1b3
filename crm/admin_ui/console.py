"""What every console page starts from: the company in the URL, the signed-in user (or
none), their language, the CSRF token — and how a page is rendered.

The company comes from the path (``/{company}/…``) or from a subdomain
(``{company}.<CRM_CONSOLE_DOMAIN>``, rewritten to the same path by :class:`SubdomainMiddleware`);
both end in the same tenant lookup. A session cookie of another company is no session here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.types import ASGIApp, Receive, Scope, Send

from crm.admin_ui.sessions import ANONYMOUS_COOKIE, SESSION_COOKIE, csrf_token, new_anonymous_key, set_cookie
from crm.admin_ui.texts import Texts, locale_of
from crm.platform.auth import Origin, Principal, authenticate, load_company
from crm.platform.editions import shipped_editions
from crm.platform.errors import CrmError, Forbidden
from crm.platform.observability import request_id_var
from crm.platform.security import ensure_module
from crm.platform.services import Services, services_of
from crm.platform.tenancy import TenantRef

TEMPLATES = Path(__file__).parent / "templates"
ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """No valid session for this company: the page sends the browser to sign in."""


class PageNotFound(Exception):
    """No such company (or page): the same answer either way."""


class CsrfRefused(Exception):
    """A form posted without this session's token."""


@dataclass
class Console:
    request: Request[Any, Any, Any]
    services: Services
    tenant: TenantRef
    company: str
    principal: Principal | None
    texts: Texts
    csrf: str
    base: str  # "/acme", or "" on the company's subdomain
    # Set on the response: the anonymous form cookie, when this request made one.
    cookies: list[tuple[str, str]] = field(default_factory=list)

    @property
    def user(self) -> Principal:
        """The signed-in user (pages behind sign-in only)."""
        assert self.principal is not None
        return self.principal

    def url(self, path: str = "/") -> str:
        return f"{self.base}{path}" if path != "/" else (self.base or "/")

    def may(self, entity: str, action: str, module: str | None = None) -> bool:
        """What the API's route permission and module guard would allow."""
        if self.principal is None:
            return False
        if module is not None and not self.has_module(module):
            return False
        return self.principal.scope(entity, action) != "none"

    def has_module(self, module: str) -> bool:
        edition = self.services.editions.get(self.tenant.edition) or shipped_editions().get(self.tenant.edition)
        return edition is not None and edition.has_module(module)

    def origin(self) -> Origin:
        client = self.request.client
        return Origin(
            channel="console", request_id=request_id_var.get(), client_address=client.host if client else None
        )


def require(console: Console, entity: str, action: str, module: str | None = None) -> None:
    """What the API's route guards refuse, refused here too: a 402 page for a module outside
    the edition, a 403 page for a right the role lacks. Services then apply the scope (404
    for a record outside it)."""
    if module is not None:
        ensure_module(console.tenant.edition, module, console.services.editions)
    if console.user.scope(entity, action) == "none":
        raise Forbidden(f"Your role does not allow {action} on {entity}.", permission=f"{entity}.{action}")


def console_base(request: Request[Any, Any, Any], slug: str) -> str:
    return "" if request.scope.get("console_subdomain") else f"/{slug}"


async def open_console(request: Request[Any, Any, Any], slug: str, *, signed_in: bool = True) -> Console:
    """The console of company ``slug`` for this request; raises LoginRequired when a page
    behind sign-in has no session of this company."""
    services = services_of(request.app.state)
    found = await load_company(slug)
    if found is None:
        raise PageNotFound()
    tenant, name = found
    principal = None
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        with contextlib.suppress(CrmError):
            principal = (await authenticate(services.db, session)).principal
        if principal is not None and principal.tenant.id != tenant.id:
            principal = None
    if signed_in and principal is None:
        raise LoginRequired()
    texts = Texts(principal.locale if principal else locale_of(request.headers.get("accept-language")))
    # An error page later in this request speaks the user's language too (routes._page).
    request.state.console_locale = texts.locale
    cookies = []
    if principal is not None and session:
        csrf = csrf_token(services.settings.secret_key.reveal(), session)
    else:
        anonymous = request.cookies.get(ANONYMOUS_COOKIE)
        if not anonymous:
            anonymous = new_anonymous_key()
            cookies.append((ANONYMOUS_COOKIE, anonymous))
        csrf = csrf_token(services.settings.secret_key.reveal(), anonymous)
    return Console(
        request=request,
        services=services,
        tenant=tenant,
        company=name,
        principal=principal,
        texts=texts,
        csrf=csrf,
        base=console_base(request, tenant.slug),
        cookies=cookies,
    )


def render(console: Console, template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    """The page ``template`` (a full page, or a fragment for htmx) with the console's context."""
    html = ENVIRONMENT.get_template(template).render(console=console, t=console.texts, **context)
    response: Response[str] = Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"},
    )
    for name, value in console.cookies:
        set_cookie(response, console.request, name, value, path=console.base or "/", max_age=None)
    return response


def render_standalone(
    request: Request[Any, Any, Any], texts: Texts, template: str, *, status_code: int = 200, **context: Any
) -> Response[str]:
    """A page outside any company's console, reached by a signed link (``token`` in
    ``context``: a password reset, an invitation). The form's CSRF token is keyed by the link
    itself: only who holds the link can post it (routes.require_csrf accepts it)."""
    services = services_of(request.app.state)
    csrf = csrf_token(services.settings.secret_key.reveal(), str(context["token"]))
    html = ENVIRONMENT.get_template(template).render(t=texts, csrf=csrf, **context)
    return Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"},
    )


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def redirect(console: Console | None, request: Request[Any, Any, Any], location: str) -> Response[str]:
    """See Other, or for htmx an HX-Redirect (htmx does not follow a 303 into a full page)."""
    if is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": location})
    return Response("", status_code=303, headers={"Location": location})


def login_location(request: Request[Any, Any, Any], slug: str) -> str:
    base = console_base(request, slug)
    here = request.url.path
    if request.scope.get("console_subdomain"):
        here = here.removeprefix(f"/{slug}") or "/"
    return f"{base}/login?next={quote(here)}"


class SubdomainMiddleware:
    """``acme.crm.example/clients`` → ``/acme/clients`` when ``CRM_CONSOLE_DOMAIN`` is
    ``crm.example``: the subdomain and the path reach the same pages and the same lookup."""

    def __init__(self, app: ASGIApp, domain: str | None) -> None:
        self.app = app
        self.suffix = f".{domain.lower().strip('.')}" if domain else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.suffix and scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").split(":")[0].lower()
            if host.endswith(self.suffix):
                slug = host[: -len(self.suffix)]
                if slug and "." not in slug and not scope["path"].startswith(("/static/", "/api/")):
                    scope = dict(scope)  # type: ignore[assignment]
                    scope["path"] = f"/{slug}{scope['path']}"
                    scope["raw_path"] = scope["path"].encode()
                    scope["console_subdomain"] = slug  # type: ignore[typeddict-unknown-key]
        await self.app(scope, receive, send)
