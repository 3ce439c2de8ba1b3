"""The public end of web forms: ``POST /api/v1/forms/{key}``, where a form on a company's
website posts its visitor's request, and the CORS preflight of that route.

It takes a plain HTML form post (``application/x-www-form-urlencoded``), ``multipart/form-data``
and JSON. The key names the company (through ``platform.web_form_keys``); nothing else the
visitor sends does. A browser page (a form post asking for HTML) is sent on to the form's
``redirect`` field when that is a page of an allowed site, else it gets a small "thank you"
page in Russian or English; scripts get ``201 {"ok": true}``. A filled-in honeypot field
(``website``, hidden from people by the snippet's CSS) gets the same answer and stores nothing,
so a bot cannot tell. Submissions are rate limited per client address and per form.

CORS is answered here only, not app-wide: a form's ``allowed_origins`` are the sites that
may post it; none listed means any site. A browser post from a site not listed is refused
(403) — a request without an ``Origin`` header (a server, an old browser) is not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec
from litestar import Controller, HttpMethod, MediaType, Request, Response, post, route
from litestar.datastructures import State
from litestar.params import FromPath

from crm.admin_ui.console import ENVIRONMENT
from crm.admin_ui.texts import Texts, add_texts
from crm.platform.errors import CrmError, FieldError, Forbidden, InvalidInput, NotFound, problem_response
from crm.platform.ratelimit import check_rate_limit
from crm.platform.security import PUBLIC, client_address, ensure_module, origin_of
from crm.platform.services import services_of
from crm.tenants.leads.web_form_schemas import Submission
from crm.tenants.leads.web_forms import MODULE, FormTarget, capture_lead, form_by_key, normal_origin, origin_of_url
from crm.tenants.mailings.unsubscribe_page import page_language

# Module constants, read at each request, so a test can lower them.
ADDRESS_LIMIT = 20  # submissions a minute from one client address (IPv6: one /64)
ADDRESS_WINDOW = 60
FORM_LIMIT = 600  # submissions an hour to one form, from everywhere together
FORM_WINDOW = 3600
MAX_BODY = 64 * 1024  # a form of five short fields; anything bigger is not a person typing
MAX_REDIRECT = 2000
PREFLIGHT_MAX_AGE = "600"

FIELDS = ("name", "phone", "email", "company", "comment")
HONEYPOT = "website"
REDIRECT = "redirect"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

add_texts(
    {
        "ru": {
            "webform.thanks.title": "Спасибо!",
            "webform.thanks.body": "«{company}» получила вашу заявку и скоро свяжется с вами.",
            "webform.thanks.back": "Вернуться на сайт",
        },
        "en": {
            "webform.thanks.title": "Thank you!",
            "webform.thanks.body": "{company} has received your request and will be in touch soon.",
            "webform.thanks.back": "Back to the site",
        },
    }
)


class UnsupportedForm(CrmError):
    code = "unsupported-media-type"
    status = 415
    title = "Unsupported media type"


# ---------------------------------------------------------------- who is posting


def sender_origin(request: Request[Any, Any, Any]) -> str | None:
    """The site the browser says the post comes from (``Origin``), normalised; None without one."""
    header = request.headers.get("origin")
    return normal_origin(header) if header else None


def allows(target: FormTarget, origin: str | None) -> bool:
    return origin is not None and (not target.allowed_origins or origin in target.allowed_origins)


def cors_headers(target: FormTarget, request: Request[Any, Any, Any]) -> dict[str, str]:
    """``Access-Control-Allow-Origin`` for a site the form allows (``*`` when it allows any)."""
    if not target.allowed_origins:
        return {"Access-Control-Allow-Origin": "*"}
    header = request.headers.get("origin")
    if header and normal_origin(header) in target.allowed_origins:
        return {"Access-Control-Allow-Origin": header, "Vary": "Origin"}
    return {"Vary": "Origin"}


def refuse_foreign_site(target: FormTarget, request: Request[Any, Any, Any]) -> None:
    """403 for a browser post from a site the form does not list."""
    header = request.headers.get("origin")
    if header is not None and target.allowed_origins and normal_origin(header) not in target.allowed_origins:
        raise Forbidden("This form does not accept posts from this site.", field="origin")


async def resolved_form(key: str) -> FormTarget:
    target = await form_by_key(key)
    if target is None:
        raise NotFound("No active web form has this key.")
    return target


# ---------------------------------------------------------------- what was posted


async def posted_fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form's fields as text, from any of the three body types; others are ignored."""
    media_type = request.content_type[0]
    names = (*FIELDS, HONEYPOT, REDIRECT)
    if media_type in FORM_TYPES:
        form = await request.form()
        # A file where text belongs is not an answer (a missing name then says so).
        return {name: value for name in names if isinstance(value := form.get(name), str)}
    if media_type != "application/json":
        raise UnsupportedForm("Post the form as a form (urlencoded or multipart) or as a JSON object.")
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise InvalidInput("The body is not JSON.", errors=[FieldError("body", "is not valid JSON")]) from None
    if not isinstance(body, dict):
        raise InvalidInput("The body is not a JSON object.", errors=[FieldError("body", "must be a JSON object")])
    fields: dict[str, str] = {}
    errors: list[FieldError] = []
    for name in names:
        value = body.get(name)
        if isinstance(value, str):
            fields[name] = value
        elif value is not None:
            errors.append(FieldError(name, "must be a string"))
    if errors:
        raise InvalidInput("The form has invalid fields.", errors=errors)
    return fields


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser navigating on a form post (no script): it asks for HTML."""
    return request.content_type[0] in FORM_TYPES and "text/html" in request.headers.get("accept", "")


def redirect_target(target: FormTarget, request: Request[Any, Any, Any], url: str) -> str | None:
    """``url`` when it is a page of a site the form lists — or, when it lists none, of the site
    that posted (never anywhere else: the route must not send browsers to arbitrary sites)."""
    url = url.strip()
    if not url or len(url) > MAX_REDIRECT or any(c in url for c in "\r\n\t\\"):
        return None
    origin = origin_of_url(url)
    if origin is None:
        return None
    if target.allowed_origins:
        return url if origin in target.allowed_origins else None
    return url if origin == sender_origin(request) else None


def back_link(target: FormTarget, request: Request[Any, Any, Any]) -> str | None:
    """The page the form was on, for the thank-you page's link back — a page of an allowed site."""
    referer = request.headers.get("referer", "")
    if referer and len(referer) <= MAX_REDIRECT and allows(target, origin_of_url(referer)):
        return referer
    sender = sender_origin(request)
    return sender if allows(target, sender) else None


def thanks_page(target: FormTarget, request: Request[Any, Any, Any]) -> Response[str]:
    texts = Texts(page_language(request.headers.get("accept-language"), target.company_locale))
    html = ENVIRONMENT.get_template("webform_thanks.html").render(
        t=texts, company=target.company_name, back_url=back_link(target, request)
    )
    return Response(
        html,
        status_code=200,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def answer(target: FormTarget, request: Request[Any, Any, Any], fields: dict[str, str]) -> Response[Any]:
    if wants_page(request):
        location = redirect_target(target, request, fields.get(REDIRECT, ""))
        if location is not None:
            return Response("", status_code=303, headers={"Location": location})
        return thanks_page(target, request)
    return Response({"ok": True}, status_code=201)


# ---------------------------------------------------------------- the routes


class WebFormCaptureController(Controller):
    path = "/api/v1/forms"
    tags = ["web forms"]

    @post(
        "/{key:str}",
        opt=PUBLIC,
        operation_id="submitWebForm",
        summary="A website visitor's request: becomes a lead of the form's company",
        description=(
            "Public: no token; the key in the path is the form's. Body: a plain HTML form post, "
            "multipart/form-data or a JSON object with `name` (required), `phone`, `email`, `company`, "
            "`comment`; `website` must stay empty (a honeypot: filled in, nothing is stored, the answer "
            "is the same); `redirect`: a page of an allowed site to send the browser to (303). A browser "
            'form post gets that redirect or a thank-you page; other callers get 201 `{"ok": true}`. '
            f"Unknown or inactive key: 404. Limits: {ADDRESS_LIMIT} a minute per address, {FORM_LIMIT} an "
            "hour per form (429)."
        ),
        request_max_body_size=MAX_BODY,
        status_code=201,
    )
    async def submit(self, request: Request[Any, Any, Any], state: State, key: FromPath[str]) -> Response[Any]:
        services = services_of(state)
        pool = services.db.pool
        cors: dict[str, str] = {}
        try:
            await check_rate_limit(
                pool, f"webform:address:{client_address(request)}", limit=ADDRESS_LIMIT, window_seconds=ADDRESS_WINDOW
            )
            target = await resolved_form(key)
            cors = cors_headers(target, request)
            ensure_module(target.tenant.edition, MODULE, services.editions)
            refuse_foreign_site(target, request)
            await check_rate_limit(
                pool, f"webform:form:{target.tenant.id}:{target.form_id}", limit=FORM_LIMIT, window_seconds=FORM_WINDOW
            )
            fields = await posted_fields(request)
            # A bot that filled the hidden field hears what a person would; only nothing is stored.
            if not fields.get(HONEYPOT, "").strip():
                submission = Submission(**{name: fields.get(name, "") for name in FIELDS})
                await capture_lead(target, submission, origin=replace(origin_of(request), channel="web_form"))
            response = answer(target, request, fields)
        except CrmError as error:
            # Problems too carry the CORS headers, so the site's script can read which field was wrong.
            response = problem_response(request, error)
        response.headers.update(cors)
        return response

    @route(
        "/{key:str}",
        http_method=[HttpMethod.OPTIONS],
        opt=PUBLIC,
        include_in_schema=False,
    )
    async def preflight(self, request: Request[Any, Any, Any], state: State, key: FromPath[str]) -> Response[Any]:
        """The browser asks whether a script of its site may post JSON here."""
        services = services_of(state)
        try:
            await check_rate_limit(
                services.db.pool,
                f"webform:preflight:{client_address(request)}",
                limit=ADDRESS_LIMIT,
                window_seconds=ADDRESS_WINDOW,
            )
            target = await resolved_form(key)
        except CrmError as error:
            return problem_response(request, error)
        headers = {"Allow": "OPTIONS, POST", **cors_headers(target, request)}
        if "Access-Control-Allow-Origin" in headers:
            headers.update(
                {
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "Content-Type, Accept, Accept-Language",
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                }
            )
        return Response(None, status_code=204, headers=headers)
