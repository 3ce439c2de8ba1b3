"""TOTP steps and the encrypted store of their secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from crm.platform.secretbox import UnreadableSecret, open_sealed, seal
from crm.platform.totp import STEP_SECONDS, matching_step, time_step

NOW = datetime(2026, 11, 27, 9, 0, 10, tzinfo=UTC)
SECRET = pyotp.random_base32()


def code(offset_steps: int) -> str:
    return str(pyotp.TOTP(SECRET).at(NOW + timedelta(seconds=offset_steps * STEP_SECONDS)))


def test_codes_pass_within_one_step_of_now_and_only_after_the_last_used() -> None:
    now_step = time_step(NOW)
    for offset in (-1, 0, 1):
        assert matching_step(SECRET, code(offset), last_step=None, now=NOW) == now_step + offset
    for offset in (-2, 2):
        assert matching_step(SECRET, code(offset), last_step=None, now=NOW) is None
    assert matching_step(SECRET, code(0), last_step=now_step, now=NOW) is None
    assert matching_step(SECRET, code(1), last_step=now_step, now=NOW) == now_step + 1
    spaced = f"{code(0)[:3]} {code(0)[3:]}"
    assert matching_step(SECRET, spaced, last_step=None, now=NOW) == now_step
    for junk in ("", "12345", "1234567", "abcdef"):
        assert matching_step(SECRET, junk, last_step=None, now=NOW) is None


def test_sealed_secrets_open_only_with_the_same_key_and_purpose() -> None:
    sealed = seal("key one", "totp", SECRET)
    assert SECRET not in sealed and sealed != seal("key one", "totp", SECRET)  # a fresh nonce each time
    assert open_sealed("key one", "totp", sealed) == SECRET
    for key, purpose, value in (
        ("key two", "totp", sealed),
        ("key one", "other", sealed),
        ("key one", "totp", sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")),
        ("key one", "totp", "v0:" + sealed[3:]),
    ):
        with pytest.raises(UnreadableSecret):
            open_sealed(key, purpose, value)
