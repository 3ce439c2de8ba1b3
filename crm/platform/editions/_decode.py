"""TOML text -> :class:`Edition`, with msgspec's errors turned into a field path and a reason.

msgspec reports the first structural error as ``"<reason> - at `$.a.b[0]`"``; this module
turns that into ``a.b[0]``, names the dict key msgspec leaves out (``[...]``), and adds the
allowed values or fields to the reason, so whoever edits the file can fix it from the
message alone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
import msgspec.structs

from ._errors import FILE_FIELD, EditionError
from ._model import Edition

# msgspec reports "<reason> - at `$.a.b[0]`" or "<reason> - at `key` in `$.a`" (a bad
# dict key), or just "<reason>" for the top-level object.
_MESSAGE = re.compile(r"^(?P<reason>.*?)(?: - at (?P<bad_key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_SEGMENT = re.compile(r"\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>\d+)\]|(?P<dict_value>\[\.\.\.\])")
_FIELD_NAME = re.compile(r"`([^`]*)`")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# msgspec does not name the dict key it was inside; this marks one we could not recover.
_UNKNOWN_KEY = "?"

Segment = str | int


def decode_edition_file(path: Path) -> Edition:
    """Read, parse and type-check one file; raise :class:`EditionError` on the first problem."""
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise EditionError(file, FILE_FIELD, f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EditionError(file, FILE_FIELD, f"not UTF-8 text: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EditionError(file, FILE_FIELD, f"TOML syntax error: {exc}") from exc
    try:
        return _convert(raw)
    except msgspec.ValidationError as exc:
        field, reason = _describe(raw, str(exc))
        raise EditionError(file, field, reason) from exc


def _convert(raw: dict[str, Any]) -> Edition:
    # The same conversion msgspec.toml.decode performs after parsing; done here so the
    # parsed document is at hand to pin down errors (see _describe).
    return msgspec.convert(raw, Edition, builtin_types=(datetime, date, time), str_keys=True)


def _describe(raw: dict[str, Any], message: str) -> tuple[str, str]:
    """Turn a msgspec ValidationError message into (field path, reason)."""
    match = _MESSAGE.match(message)
    assert match is not None  # the pattern matches any string
    reason = match["reason"]
    segments = _resolve(raw, _parse_path(match["path"] or ""), message)
    if match["bad_key"]:
        key = _find_bad_key(raw, segments, message)
        return _render([*segments, key]), f"invalid key {key!r}: {reason}"
    if reason.startswith("Object missing required field"):
        name = _FIELD_NAME.search(reason)
        if name:
            segments, reason = [*segments, name[1]], "required field is missing"
    elif reason.startswith("Object contains unknown field"):
        name = _FIELD_NAME.search(reason)
        if name:
            known = _struct_fields(segments)
            segments, reason = [*segments, name[1]], "unknown field"
            if known:
                reason = f"{reason}; expected one of: {', '.join(known)}"
    elif reason == r"Expected `str` matching regex '\\S'":
        reason = "must be non-empty text"
    elif reason.startswith("Invalid enum value"):
        allowed = _allowed_values(segments)
        if allowed:
            reason = f"{reason}; expected one of: {', '.join(allowed)}"
    elif segments[:1] == ["limits"] and reason.startswith(("Expected `int` >= 0", "Expected `int | null`")):
        # "null" means nothing in TOML: an unlimited limit is one left out of the file.
        reason = reason.replace("`int | null`", "`int`") + " (leave the limit out for unlimited)"
    # msgspec speaks JSON; the file is TOML, where an object is a table.
    return _render(segments), reason.replace("`object`", "`table`")


def _parse_path(path: str) -> list[Segment | None]:
    """``.a[0][...]`` -> ``["a", 0, None]``; ``None`` stands for a dict key msgspec left out."""
    segments: list[Segment | None] = []
    for match in _SEGMENT.finditer(path):
        if match["name"] is not None:
            segments.append(match["name"])
        elif match["index"] is not None:
            segments.append(int(match["index"]))
        else:
            segments.append(None)
    return segments


def _resolve(raw: dict[str, Any], segments: list[Segment | None], message: str) -> list[Segment]:
    """Fill in the dict keys msgspec reports as ``[...]``.

    For each such dict, keep one entry at a time and convert again: the first entry that
    reproduces the same error is the one msgspec tripped over (it checks in file order).
    """
    resolved: list[Segment] = []
    for segment in segments:
        if segment is None:
            segment = _find_bad_key(raw, resolved, message)
        resolved.append(segment)
    return resolved


def _find_bad_key(raw: dict[str, Any], path: list[Segment], message: str) -> str:
    """The key of the dict at ``path`` whose entry alone reproduces ``message``."""
    mapping = _get(raw, path)
    if not isinstance(mapping, dict):
        return _UNKNOWN_KEY
    for key, value in mapping.items():
        try:
            _convert(_replace(raw, path, {key: value}))
        except msgspec.ValidationError as exc:
            if str(exc) == message:
                return str(key)
    return _UNKNOWN_KEY


def _get(node: Any, path: list[Segment]) -> Any:
    for segment in path:
        try:
            node = node[segment]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _replace(node: Any, path: list[Segment], value: Any) -> Any:
    """A copy of ``node`` with the item at ``path`` replaced; only the path is copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list) and isinstance(head, int):
        items = list(node)
        items[head] = _replace(node[head], rest, value)
        return items
    mapping = dict(node)
    mapping[head] = _replace(node[head], rest, value)
    return mapping


def _allowed_values(path: list[Segment]) -> list[str] | None:
    """The values the Literal field at ``path`` accepts, in declaration order."""
    annotation = _unwrap(_annotation_at(path))
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return None


def _struct_fields(path: list[Segment]) -> list[str] | None:
    """The field names of the struct at ``path``."""
    annotation = _unwrap(_annotation_at(path))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return list(annotation.__struct_fields__)
    return None


def _annotation_at(path: list[Segment]) -> Any:
    """The type annotation of the item at ``path`` inside :class:`Edition` (``None`` if unknown)."""
    annotation: Any = Edition
    for segment in path:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
            fields = {field.name: field.type for field in msgspec.structs.fields(annotation)}
            if segment not in fields:
                return None
            annotation = fields[segment]
        elif origin in (tuple, list) and isinstance(segment, int):
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    return annotation


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, Meta(...)]`` -> ``X``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _render(segments: Iterable[Segment]) -> str:
    """``["defaults", "pipelines", 0, "kind"]`` -> ``defaults.pipelines[0].kind``."""
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _IDENTIFIER.match(segment):
            text += f".{segment}"
        else:
            text += f"[{segment!r}]"
    return text.lstrip(".") or "(root)"
