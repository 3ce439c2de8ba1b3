"""Signed links: HMAC-SHA256 with the product's secret key over a purpose and its parts."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(key: str, purpose: str, *parts: str) -> str:
    message = ":".join((purpose, *parts)).encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signature_matches(key: str, signature: str, purpose: str, *parts: str) -> bool:
    return hmac.compare_digest(sign(key, purpose, *parts), signature)
