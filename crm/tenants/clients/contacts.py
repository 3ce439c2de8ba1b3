"""Phones and e-mails as stored: one rule for clients, leads, CSV imports and logged calls.

Phones become E.164 in the company's region, e-mails lower case; repeats inside one list
are dropped, order kept. Sharing the rule means a lead's or an import row's addresses are
always valid on the client they become.
"""

from __future__ import annotations

import re

from crm.platform.errors import FieldError
from crm.tenants.clients.phones import InvalidPhone, normalize_phone
from crm.tenants.configuration.settings import company_profile

MAX_PHONES = 20
MAX_EMAILS = 20
MAX_EMAIL = 320
# A sane address, not RFC 5322: one @, no spaces, a dot in the domain (Unicode allowed: почта@пример.рф).
EMAIL = re.compile(r"^[^\s@,;<>()\[\]\\\"]{1,64}@[^\s@,;<>()\[\]\\\".]+(\.[^\s@,;<>()\[\]\\\".]+)+$")


async def phone_region() -> str | None:
    """The region local numbers are read in: the company's current setting."""
    region: str | None = (await company_profile()).get("phone_region")
    return region


def is_email(text: str) -> bool:
    """Whether ``text`` (trimmed, lower case) is an address we store."""
    return len(text) <= MAX_EMAIL and EMAIL.fullmatch(text) is not None


def clean_phones(raw: list[str], region: str | None, errors: list[FieldError], *, quote: bool = False) -> list[str]:
    """E.164 in ``region``, repeats dropped. A bad number is named ``phones.N``; with
    ``quote`` (an import row, whose cells have no index) it is named ``phones`` and the
    detail quotes the number."""
    phones: list[str] = []
    if len(raw) > MAX_PHONES:
        errors.append(FieldError("phones", f"at most {MAX_PHONES} numbers"))
    for index, text in enumerate(raw):
        try:
            phone = normalize_phone(text, region)
        except InvalidPhone:
            errors.append(_bad("phones", index, text, "is not a phone number", quote=quote))
            continue
        if phone not in phones:
            phones.append(phone)
    return phones


def clean_emails(raw: list[str], errors: list[FieldError], *, quote: bool = False) -> list[str]:
    """Lower case, repeats dropped. A bad address is named ``emails.N``, or with ``quote``
    ``emails`` with the address in the detail (as :func:`clean_phones`)."""
    emails: list[str] = []
    if len(raw) > MAX_EMAILS:
        errors.append(FieldError("emails", f"at most {MAX_EMAILS} addresses"))
    for index, text in enumerate(raw):
        email = text.strip().lower()
        if not is_email(email):
            errors.append(_bad("emails", index, text, "is not an e-mail address", quote=quote))
        elif email not in emails:
            emails.append(email)
    return emails


def _bad(field: str, index: int, text: str, problem: str, *, quote: bool) -> FieldError:
    return FieldError(field, f"{text!r} {problem}") if quote else FieldError(f"{field}.{index}", problem)
