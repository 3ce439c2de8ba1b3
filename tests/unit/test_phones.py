"""Phone numbers: E.164 from whatever people type, read in the company's region."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.tenants.clients.phones import InvalidPhone, normalize_phone, phone_or_none, region_for


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("8 (912) 345-67-89", "RU", "+79123456789"),
        ("+7 912 345-67-89", "RU", "+79123456789"),
        ("89123456789", "RU", "+79123456789"),
        ("9123456789", "RU", "+79123456789"),
        ("+7 (495) 123-45-67", "US", "+74951234567"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("(212) 555-0123", "US", "+12125550123"),
        ("+44 20 7946 0123", None, "+442079460123"),
    ],
)
def test_normalize_phone(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "   ", "12", "call me", "8 912", "9" * 41, "+0 000"])
def test_not_phone_numbers(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, "RU")


def test_phone_or_none_is_for_search_text() -> None:
    assert phone_or_none("8 912 345 67 89", "RU") == "+79123456789"
    assert phone_or_none("Иванов", "RU") is None
    assert phone_or_none("1234", "RU") is None  # too few digits to be a number
    assert phone_or_none("anna@example.ru", "RU") is None


def test_region_for_a_new_company() -> None:
    assert region_for("Europe/Moscow", "ru") == "RU"
    assert region_for("Asia/Almaty", "ru") == "KZ"
    assert region_for("Europe/London", "en") == "GB"
    assert region_for("UTC", "ru") == "RU"
    assert region_for("UTC", "en") == "US"


@given(st.text(max_size=60))
def test_any_text_either_normalises_to_e164_or_is_refused(text: str) -> None:
    try:
        phone = normalize_phone(text, "RU")
    except InvalidPhone:
        return
    assert phone.startswith("+") and phone[1:].isdigit()
    # Normalising is idempotent: the stored form reads back as itself.
    assert normalize_phone(phone, "US") == phone
