"""Secrets the product must read back (TOTP seeds), encrypted at rest with its secret key.

AES-256-GCM with a key derived from ``CRM_SECRET_KEY`` and a purpose, so a database dump
alone does not reveal them. The purpose is bound as associated data: a value encrypted
for one purpose does not open for another. Changing the secret key makes stored values
unreadable (users then enrol their authenticator again).
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class UnreadableSecret(Exception):
    """The value was altered, or encrypted with another key or for another purpose."""


def _key(secret_key: str, purpose: str) -> bytes:
    return hashlib.sha256(f"relay-crm:secretbox:{purpose}:{secret_key}".encode()).digest()


def seal(secret_key: str, purpose: str, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key, purpose)).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(secret_key: str, purpose: str, value: str) -> str:
    version, _, body = value.partition(":")
    if version != _VERSION:
        raise UnreadableSecret(f"unknown format {version!r}")
    try:
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(_key(secret_key, purpose)).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except (InvalidTag, ValueError) as error:
        raise UnreadableSecret(str(error) or "invalid tag") from None
