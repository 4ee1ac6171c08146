"""Dot paths over the event envelope (``data.user.email``, ``metadata.ip``, ``source``).

A path is split on ``.``; its first segment names an envelope field. Inside
``data`` and ``metadata`` each further segment is an object key, or, when the
value there is a list, a decimal index (``data.items.0.sku``). Keys that contain
a dot cannot be reached by a path (use a ``cel`` condition: ``data["a.b"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.explain import MISSING as MISSING

from . import limits

#: fields of ``Event.envelope()``
ENVELOPE_FIELDS: Final = frozenset(
    {
        "id",
        "type",
        "source",
        "subject",
        "aggregate_type",
        "aggregate_id",
        "time",
        "data",
        "metadata",
        "correlation_id",
        "causation_id",
        "tenant",
    }
)
#: envelope fields holding JSON objects; every other field is a string
OBJECT_FIELDS: Final = frozenset({"data", "metadata"})

Segments = tuple[str, ...]


def parse_path(text: object, where: str, *, reason: str = "INVALID_CONDITION") -> Segments:
    """Validate a dot path and split it; ``where`` names the offending field in errors."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument.field(where, "a field path must be a non-empty string", reason=reason)
    if len(text) > limits.MAX_PATH_LENGTH:
        raise InvalidArgument.field(where, f"field path longer than {limits.MAX_PATH_LENGTH} characters", reason=reason)
    segments = tuple(text.split("."))
    if len(segments) > limits.MAX_PATH_SEGMENTS:
        raise InvalidArgument.field(where, f"field path deeper than {limits.MAX_PATH_SEGMENTS} segments", reason=reason)
    if any(not s or not s.isprintable() for s in segments):
        raise InvalidArgument.field(where, f"invalid field path {text!r}: empty or unprintable segment", reason=reason)
    check_root(segments, where, reason=reason)
    return segments


def check_root(segments: Segments, where: str, *, reason: str) -> None:
    """The first segment must be an envelope field; string fields have no sub-path."""
    root = segments[0]
    if root not in ENVELOPE_FIELDS:
        known = ", ".join(sorted(ENVELOPE_FIELDS))
        raise InvalidArgument.field(where, f"unknown envelope field {root!r} (one of: {known})", reason=reason)
    if len(segments) > 1 and root not in OBJECT_FIELDS:
        raise InvalidArgument.field(where, f"{root!r} is a string field and has no sub-fields", reason=reason)


def resolve(envelope: dict[str, Any], segments: Segments) -> Any:
    """The value at ``segments``, or :data:`MISSING` when any step does not exist."""
    current: Any = envelope
    for segment in segments:
        if isinstance(current, dict):
            current = current.get(segment, MISSING)
            if current is MISSING:
                return MISSING
        elif isinstance(current, list) and segment.isdecimal():
            index = int(segment)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def getter(segments: Segments) -> Callable[[dict[str, Any]], Any]:
    """A function reading ``segments`` from an envelope, specialised for short paths.

    Matching resolves a handful of paths per candidate action, so the common
    one-to-three-segment object paths skip the generic loop; anything else (a list
    on the way, a deeper path) falls back to :func:`resolve`.
    """
    if len(segments) == 1:
        (first,) = segments
        return lambda envelope: envelope.get(first, MISSING)
    if len(segments) == 2:
        first, second = segments

        def get2(envelope: dict[str, Any]) -> Any:
            parent = envelope.get(first, MISSING)
            if type(parent) is dict:
                return parent.get(second, MISSING)
            return resolve(envelope, segments)

        return get2
    if len(segments) == 3:
        first, second, third = segments

        def get3(envelope: dict[str, Any]) -> Any:
            parent = envelope.get(first, MISSING)
            if type(parent) is dict:
                parent = parent.get(second, MISSING)
                if type(parent) is dict:
                    return parent.get(third, MISSING)
            return resolve(envelope, segments)

        return get3
    return lambda envelope: resolve(envelope, segments)


def display(segments: Segments) -> str:
    return ".".join(segments)
