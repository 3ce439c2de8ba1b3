"""Console sessions and CSRF tokens.

A session is an API token of the user (``access_tokens`` row named ``console``) whose secret
lives only in an HttpOnly cookie: the server keeps the state (revocation, last use, the
user's deactivation), the browser only a key. Signing out revokes it; "sign out everywhere"
revokes every token of the user. The cookie is ``SameSite=Lax`` and ``Secure`` when the
console is served over HTTPS, and scoped to the company's path, so two companies' sessions
in one browser never meet.

Every form carries a CSRF token derived from the session (or, before sign-in, from a random
cookie of its own): an HMAC under the server's secret key, checked in constant time on
every POST. A form posted from another site has neither the cookie's value nor the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from litestar import Request, Response

from crm.platform.auth import token_hash

SESSION_COOKIE = "crm_session"
ANONYMOUS_COOKIE = "crm_form"  # keys the CSRF token of forms shown before sign-in
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"  # htmx sends it (hx-headers on <body>)
SESSION_NAME = "console"
SESSION_DAYS = 14  # then the server refuses the session (the token expires), whatever the browser keeps


def csrf_token(secret_key: str, session: str) -> str:
    """The form token for ``session`` (a session cookie's value, or the anonymous cookie's)."""
    return hmac.new(secret_key.encode(), f"console-csrf:{token_hash(session)}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session: str | None, given: str | None) -> bool:
    if not session or not given:
        return False
    return hmac.compare_digest(csrf_token(secret_key, session), given)


def new_anonymous_key() -> str:
    return secrets.token_urlsafe(24)


def set_cookie(
    response: Response[Any], request: Request[Any, Any, Any], name: str, value: str, *, path: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_cookie(response: Response[Any], name: str, *, path: str) -> None:
    response.delete_cookie(name, path=path)


def is_https(request: Request[Any, Any, Any]) -> bool:
    """Served over HTTPS (directly, or behind a proxy that uvicorn trusts)."""
    return request.url.scheme == "https"
