"""Argon2id hashing, password rules, and logins that can never match."""

from __future__ import annotations

import pytest

from crm.platform.passwords import hash_password, password_problem, verify_password


async def test_hash_and_verify() -> None:
    hashed = await hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse battery")
    assert not await verify_password(hashed, "correct horse batterY")


@pytest.mark.parametrize("stored", [None, "", "not-a-hash"])
async def test_no_usable_hash_never_matches(stored: str | None) -> None:
    """A user without a password (or an unknown user) cannot be logged into with anything."""
    for attempt in ("", "relay-crm-timing-equaliser", "password", stored or "x"):
        assert not await verify_password(stored, attempt)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 10"),
        ("x" * 257, "at most 256"),
        ("aaaaaaaaaaaa", "too easy"),
        ("password123", "too easy"),
        ("olga.petrova-2024!", "e-mail"),
        ("my name is Ivanov!!", "name"),
    ],
)
def test_weak_passwords_are_explained(password: str, problem: str) -> None:
    found = password_problem(password, email="olga.petrova@example.ru", name="Ivanov")
    assert found is not None and problem in found


def test_a_good_password_passes() -> None:
    assert password_problem("correct horse battery", email="olga@example.ru", name="Olga") is None
