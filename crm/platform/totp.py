"""TOTP codes (RFC 6238, via pyotp): which time step a code belongs to, and spending it once.

Shared by the login (crm/platform/auth.py) and the two-factor settings of
crm/tenants/users/two_factor.py.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import pyotp

from crm.platform.secretbox import UnreadableSecret, open_sealed
from crm.platform.tenancy import scope_connection

PURPOSE = "totp"
ISSUER = "Relay CRM"
STEP_SECONDS = 30
# Codes from one step before or after now pass too: phones' clocks drift.
DRIFT_STEPS = 1


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, *, last_step: int | None, now: datetime | None = None) -> int | None:
    """The time step ``code`` belongs to, if it is near now and later than the last one used."""
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = time_step(now or datetime.now(UTC))
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def login_code_step(user: dict[str, Any], code: str | None, *, secret_key: str) -> int | None:
    """For a user with two-factor on: the step of a valid ``code``, else None."""
    if not code:
        return None
    try:
        secret = open_sealed(secret_key, PURPOSE, user["totp_secret"])
    except UnreadableSecret:
        return None  # the secret key changed: an admin resets two-factor for the user
    return matching_step(secret, code, last_step=user["totp_last_step"])


async def spend_step(user_id: int, step: int) -> bool:
    """Record ``step`` as used, unless a concurrent login took it (or a later one) first."""
    used = await scope_connection().fetchval(
        "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"
        " RETURNING id",
        user_id,
        step,
    )
    return used is not None
