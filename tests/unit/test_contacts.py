"""The one phone and e-mail rule of clients, leads and imports."""

from __future__ import annotations

import pytest

from crm.platform.errors import FieldError
from crm.tenants.clients.contacts import MAX_PHONES, clean_emails, clean_phones, is_email


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ivan@vector.example", True),
        ("почта@пример.рф", True),
        ("no-at-sign.example", False),
        ("two@@example.ru", False),
        ("a@b@c.ru", False),
        ("ivan@localhost", False),
        ("ivan@example.", False),
        ("ivan petrov@example.ru", False),
        ("a" * 60 + "@" + "b" * 260 + ".ru", False),  # longer than 320
    ],
)
def test_is_email(text: str, expected: bool) -> None:
    assert is_email(text) is expected


def test_bad_values_are_named_by_index() -> None:
    errors: list[FieldError] = []
    phones = clean_phones(["8 (912) 345-67-89", "не номер", "+79123456789"], "RU", errors)
    emails = clean_emails([" Ivan@Vector.example ", "не почта", "ivan@vector.example"], errors)
    assert phones == ["+79123456789"]
    assert emails == ["ivan@vector.example"]
    assert errors == [
        FieldError("phones.1", "is not a phone number"),
        FieldError("emails.1", "is not an e-mail address"),
    ]


def test_quoted_bad_values_are_named_by_themselves() -> None:
    errors: list[FieldError] = []
    clean_phones(["не номер"], "RU", errors, quote=True)
    clean_emails(["Не Почта"], errors, quote=True)
    assert errors == [
        FieldError("phones", "'не номер' is not a phone number"),
        FieldError("emails", "'Не Почта' is not an e-mail address"),
    ]


def test_too_many_numbers() -> None:
    errors: list[FieldError] = []
    phones = clean_phones([f"+7912345{n:04d}" for n in range(MAX_PHONES + 1)], "RU", errors)
    assert len(phones) == MAX_PHONES + 1
    assert errors == [FieldError("phones", f"at most {MAX_PHONES} numbers")]
