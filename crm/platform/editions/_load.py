"""Loading edition files and the set of editions the platform serves."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path

from ._decode import decode_edition_file
from ._errors import DIRECTORY_FIELD, EditionError
from ._model import KNOWN_MODULES, Edition
from ._rules import edition_problems


def load_edition_file(path: Path) -> Edition:
    """Parse and validate one edition file; raise the first :class:`EditionError` found."""
    edition = decode_edition_file(path)
    problems = edition_problems(edition, file_stem=path.stem)
    if problems:
        raise EditionError(str(path), problems[0].field, problems[0].reason)
    return edition


def check_edition_file(path: Path) -> list[EditionError]:
    """Every problem of one edition file; an empty list means the file is valid.

    A structural problem (syntax, a wrong type, a missing or unknown field) stops the
    check, so it is reported alone; otherwise every cross-field problem is listed.
    """
    try:
        edition = decode_edition_file(path)
    except EditionError as error:
        return [error]
    return [
        EditionError(str(path), problem.field, problem.reason)
        for problem in edition_problems(edition, file_stem=path.stem)
    ]


@cache
def shipped_editions() -> Editions:
    """The shipped editions, loaded once per process (service functions check modules with it)."""
    return load_editions()


def load_editions(directory: Path | None = None) -> Editions:
    """Load every ``*.toml`` in ``directory`` (default: the shipped editions).

    Raises the first :class:`EditionError`, so a bad file stops the start-up.
    """
    directory = directory if directory is not None else _shipped_directory()
    if not directory.is_dir():
        raise EditionError(str(directory), DIRECTORY_FIELD, "not a directory")
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise EditionError(str(directory), DIRECTORY_FIELD, "contains no edition files (*.toml)")
    return Editions(load_edition_file(path) for path in paths)


class Editions(Mapping[str, Edition]):
    """The loaded editions by key, iterated in display order (``order``, then ``key``)."""

    def __init__(self, editions: Iterable[Edition]) -> None:
        by_key: dict[str, Edition] = {}
        for edition in sorted(editions, key=lambda edition: (edition.order, edition.key)):
            if edition.key in by_key:
                raise ValueError(f"edition {edition.key!r} given twice")
            by_key[edition.key] = edition
        self._by_key = by_key

    def __getitem__(self, key: str) -> Edition:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"Editions({list(self._by_key)!r})"

    def with_module(self, module: str) -> list[str]:
        """Keys of the editions that include ``module``, in display order.

        Raises ``ValueError`` for an unknown module name (see :meth:`Edition.has_module`).
        """
        if module not in KNOWN_MODULES:
            raise ValueError(f"unknown module {module!r}; known modules: {', '.join(KNOWN_MODULES)}")
        return [key for key, edition in self._by_key.items() if module in edition.modules]

    def public(self) -> list[Edition]:
        """The editions shown on the signup page, in display order."""
        return [edition for edition in self._by_key.values() if edition.billing.public]


def _shipped_directory() -> Path:
    # The TOML files sit next to this module (and are package data in pyproject.toml).
    return Path(__file__).resolve().parent
