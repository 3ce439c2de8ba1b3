"""Errors the product raises on purpose, and their RFC 9457 problem documents.

Every area raises a subclass of :class:`CrmError` carrying a machine ``code``, an HTTP
status and a human message; :func:`problem_response` is the one place that turns them
(and Litestar's own validation errors) into ``application/problem+json`` answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Sentry's Litestar integration reports these exceptions itself; this logger is for the
# log only and is excluded from Sentry's logging integration (no duplicate events).
UNHANDLED_ERRORS_LOGGER = "crm.http.unhandled"
unhandled_errors_log = logging.getLogger(UNHANDLED_ERRORS_LOGGER)
PROBLEM_BASE = "https://relay-crm.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: its name (dotted for nested fields) and what is wrong."""

    field: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "detail": self.detail}


class CrmError(Exception):
    """Base of all deliberate errors. Subclasses set ``code``, ``status`` and ``title``."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra
        self.headers: dict[str, str] = {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        extra = dict(self.extra)
        if self.errors:
            extra["errors"] = [error.to_dict() for error in self.errors]
        return problem_body(self.status, self.title, self.detail, self.code, instance=instance, **extra)


class InvalidInput(CrmError):
    code = "invalid-input"
    status = 422
    title = "Invalid input"


class Conflict(CrmError):
    code = "conflict"
    status = 409
    title = "Conflict"


class NotFound(CrmError):
    code = "not-found"
    status = 404
    title = "Not found"


class Unauthorized(CrmError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "Invalid or missing credentials.") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="relay-crm"'}


class TwoFactorRequired(Unauthorized):
    """The password was right; the account also needs a code from its authenticator app."""

    code = "two-factor-required"
    title = "Two-factor code required"

    def __init__(self, detail: str, *, problem: str) -> None:
        super().__init__(detail)
        self.errors = [FieldError("totp_code", problem)]


class Forbidden(CrmError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class TooManyRequests(CrmError):
    code = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class LimitReached(CrmError):
    """A quota of the tenant's edition is used up (402: a bigger edition has more room)."""

    code = "limit-reached"
    status = 402
    title = "Edition limit reached"


class ModuleNotInEdition(CrmError):
    """A module the tenant's edition does not include (402 Payment Required)."""

    code = "module-not-in-edition"
    status = 402
    title = "Module not included in your edition"


def problem_body(
    status: int, title: str, detail: str, code: str, *, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An RFC 9457 problem document; ``code`` also names its ``type``."""
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body["code"] = code
    body.update(extra)
    return body


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response(
        problem_body(status, title, detail, code, **extra), status_code=status, media_type=PROBLEM_MEDIA_TYPE
    )


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Map any exception reaching the edge to a problem document."""
    if isinstance(exc, CrmError):
        return Response(
            exc.to_problem(instance=request.url.path),
            status_code=exc.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=exc.headers,
        )
    if isinstance(exc, ValidationException):
        return problem(
            400 if not exc.extra else 422,
            "Invalid input",
            "The request body or parameters are not valid.",
            "invalid-input",
            errors=_litestar_field_errors(exc.extra),
            instance=request.url.path,
        )
    if isinstance(exc, HTTPException):
        response = problem(
            exc.status_code,
            _title_for(exc.status_code),
            str(exc.detail),
            _title_for(exc.status_code).lower().replace(" ", "-"),
            instance=request.url.path,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    # Anything else is a bug: Sentry and the log get the traceback, the client a plain 500.
    unhandled_errors_log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal server error", "Something went wrong on our side.", "internal-error")


def _litestar_field_errors(extra: Any) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for item in extra or []:
        if isinstance(item, dict):
            errors.append({"field": str(item.get("key") or "body"), "detail": str(item.get("message", ""))})
    return errors


def _title_for(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
