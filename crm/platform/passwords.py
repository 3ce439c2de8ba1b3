"""Argon2id password hashing, off the event loop (a hash costs tens of milliseconds of CPU)."""

from __future__ import annotations

import asyncio
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# A few of the passwords people pick first; the length rule catches most of the rest.
COMMON_PASSWORDS = frozenset(
    {"password123", "qwerty12345", "1234567890", "qwertyuiop", "password1234", "iloveyou123", "0987654321"}
)

# Argon2id at the OWASP-recommended cost (19 MiB, 2 passes, 1 lane): a hash costs ~45 ms
# here instead of ~150 ms for the library's default profile (64 MiB, 3 passes, 4 lanes),
# which on a 2-core server made every signup and login wait on hashing. Parameters are
# stored in each hash, so hashes made with other settings keep verifying.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def warm_up() -> None:
    """Compute the dummy hash at start-up, so the first unknown-user login is not slower."""
    _dummy_hash()


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other cost parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. With no hash (unknown user) a dummy hash is checked
    so that the answer takes as long whether or not the account exists."""
    target = password_hash or _dummy_hash()

    def check() -> bool:
        try:
            return _hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    matched = await asyncio.to_thread(check)
    # An empty hash (a user who never set a password) never matches anything.
    return matched and bool(password_hash)


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why ``password`` is too weak, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters long"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters long"
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        return "is too easy to guess"
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        return "must not contain the e-mail address"
    if name and len(name) >= 4 and name.lower() in lowered:
        return "must not contain the user's name"
    return None
