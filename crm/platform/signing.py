"""Signed one-time links: ``<tenant id>.<row id>.<nonce>.<signature>``.

The signature (HMAC-SHA256 with the product's secret key, over a purpose and the parts)
makes a forged or altered link fail before any lookup; the row keeps only the nonce's
SHA-256, and its ``used_at``/``expires_at`` make the link work once and not for long.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_TOKEN = re.compile(r"^([a-z0-9]{12})\.(\d{1,10})\.([A-Za-z0-9_-]{20,64})\.([A-Za-z0-9_-]{43})$")


def sign(key: str, purpose: str, *parts: str) -> str:
    message = ":".join((purpose, *parts)).encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def link_token(key: str, purpose: str, tenant_id: str, row_id: int, nonce: str) -> str:
    parts = (tenant_id, str(row_id), nonce)
    return f"{'.'.join(parts)}.{sign(key, purpose, *parts)}"


@dataclass(frozen=True)
class LinkParts:
    tenant_id: str
    row_id: int
    nonce: str


def read_link_token(key: str, purpose: str, token: str) -> LinkParts | None:
    """The parts of a genuine token for ``purpose`` (a full URL is accepted too), else None."""
    match = _TOKEN.fullmatch(token.strip().rsplit("/", 1)[-1])
    if match is None:
        return None
    tenant_id, row_id, nonce, signature = match.groups()
    if not hmac.compare_digest(sign(key, purpose, tenant_id, row_id, nonce), signature):
        return None
    return LinkParts(tenant_id, int(row_id), nonce)
