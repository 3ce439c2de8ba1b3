"""Company lists of keyed, named entries (call outcomes, task types): the rules they share.

Each entry has a key (what records store; it never changes meaning) and a name in each
language; the admin replaces the whole list at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from crm.platform.errors import FieldError, InvalidInput

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_ENTRIES = 50
MAX_NAME = 100


class Names(Protocol):
    @property
    def ru(self) -> str: ...
    @property
    def en(self) -> str: ...


class Entry(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def names(self) -> Names: ...


def clean_keyed_list(
    entries: Sequence[Entry],
    *,
    noun: str,
    minimum: int = 0,
    extra: Callable[[Any], dict[str, Any]] = lambda entry: {},
) -> list[dict[str, Any]]:
    """``entries`` in their stored form (``key``, ``names`` and ``extra(entry)``); 422 naming
    every bad field (``2.names.ru``). ``noun``: what an entry is called in messages."""
    errors: list[FieldError] = []
    if not minimum <= len(entries) <= MAX_ENTRIES:
        errors.append(FieldError("body", f"must list {minimum} to {MAX_ENTRIES} {noun}s"))
    seen: set[str] = set()
    cleaned = []
    for index, entry in enumerate(entries):
        if not KEY.fullmatch(entry.key):
            errors.append(FieldError(f"{index}.key", "must be a-z, 0-9 and _, starting with a letter, at most 50"))
        elif entry.key in seen:
            errors.append(FieldError(f"{index}.key", f"repeats an earlier {noun}"))
        seen.add(entry.key)
        names = {"ru": entry.names.ru.strip(), "en": entry.names.en.strip()}
        for language, name in names.items():
            if not 1 <= len(name) <= MAX_NAME:
                errors.append(FieldError(f"{index}.names.{language}", f"must be 1 to {MAX_NAME} characters"))
        cleaned.append({"key": entry.key, "names": names, **extra(entry)})
    if errors:
        raise InvalidInput(f"The {noun}s have invalid fields.", errors=errors)
    return cleaned
