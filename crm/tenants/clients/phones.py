"""Phone numbers in E.164, whatever way people typed them.

A number without a country code is read in the tenant's region, which signup derives from
the company's timezone (Europe/Moscow → RU) and the admin can change: in a Russian
company ``8 (912) 345-67-89`` is ``+79123456789``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import phonenumbers

DEFAULT_REGION_BY_LOCALE = {"ru": "RU", "en": "US"}


class InvalidPhone(ValueError):
    """Not a possible phone number in any reading."""


def normalize_phone(raw: str, region: str | None) -> str:
    """``raw`` as E.164 (``+79123456789``); InvalidPhone if it cannot be a phone number."""
    text = raw.strip()
    if not text or len(text) > 40:
        raise InvalidPhone(raw)
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(raw) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_or_none(raw: str, region: str | None) -> str | None:
    """For search: the E.164 form of ``raw`` if it reads as a phone number, else None."""
    if sum(character.isdigit() for character in raw) < 5:
        return None
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None


@cache
def _countries_by_timezone() -> dict[str, str]:
    """IANA zone → ISO country, from the tz database's zone.tab (shipped by ``tzdata``)."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _coordinates, zone, *_ = line.split("\t")
            zones[zone] = country
    return zones


def region_for(timezone: str, locale: str) -> str:
    """The phone region a new company starts with: its timezone's country, else its locale's."""
    return _countries_by_timezone().get(timezone) or DEFAULT_REGION_BY_LOCALE.get(locale, "US")
