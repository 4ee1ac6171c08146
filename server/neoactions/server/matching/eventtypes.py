"""Event types and event-type patterns.

An event type is lowercase segments ``[a-z0-9_]+`` joined by ``.``. A pattern is
segments of which each is a literal, ``*`` (exactly one segment) or ``**`` (zero
or more segments, like ``**`` in a gitignore glob or ``#`` in AMQP), except that
the pattern ``*`` alone is the universal pattern and matches every type (it is
stored as ``**``, which means the same).

``users.**`` therefore matches ``users``, ``users.created`` and
``users.profile.updated``; ``users.*`` matches only ``users.created``-like types;
``**.failed`` matches any type whose last segment is ``failed``.
"""

from __future__ import annotations

import re
from typing import Any

from neoactions.domain.errors import InvalidArgument

from . import limits

_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_LITERAL = re.compile(r"[a-z0-9_]+")
STAR = "*"
GLOBSTAR = "**"


def validate_event_type(type: Any, path: str = "event.type") -> None:
    """Refuse an event type that is not lowercase ``[a-z0-9_]+`` segments joined by ``.``."""
    if not isinstance(type, str) or not type:
        raise InvalidArgument.field(path, "an event type is required", reason="INVALID_EVENT_TYPE")
    if len(type) > limits.MAX_TYPE_LENGTH:
        raise InvalidArgument.field(
            path, f"event type longer than {limits.MAX_TYPE_LENGTH} characters", reason="INVALID_EVENT_TYPE"
        )
    if not _TYPE.fullmatch(type):
        raise InvalidArgument.field(
            path,
            f"invalid event type {type!r}: lowercase segments [a-z0-9_]+ joined by '.'",
            reason="INVALID_EVENT_TYPE",
        )


def is_event_type(text: Any) -> bool:
    return isinstance(text, str) and len(text) <= limits.MAX_TYPE_LENGTH and bool(_TYPE.fullmatch(text))


def parse_pattern(pattern: Any, where: str) -> tuple[str, ...]:
    """Validate a pattern and return its normalised segments.

    Normalisation: ``*`` alone becomes ``**``, and runs of ``**`` collapse into one
    (``a.**.**`` means ``a.**``), so equal meanings share one index node.
    """
    reason = "INVALID_EVENT_PATTERN"
    if not isinstance(pattern, str) or not pattern:
        raise InvalidArgument.field(where, "an event type pattern must be a non-empty string", reason=reason)
    if len(pattern) > limits.MAX_TYPE_LENGTH:
        raise InvalidArgument.field(where, f"pattern longer than {limits.MAX_TYPE_LENGTH} characters", reason=reason)
    if pattern == STAR:
        return (GLOBSTAR,)
    segments: list[str] = []
    for segment in pattern.split("."):
        if segment not in (STAR, GLOBSTAR) and not _LITERAL.fullmatch(segment):
            raise InvalidArgument.field(
                where,
                f"invalid pattern {pattern!r}: each segment is [a-z0-9_]+, '*' (one segment) "
                "or '**' (any number of segments)",
                reason=reason,
            )
        if segment == GLOBSTAR and segments and segments[-1] == GLOBSTAR:
            continue
        segments.append(segment)
    return tuple(segments)


def segments_match(pattern: tuple[str, ...], segments: tuple[str, ...] | list[str]) -> bool:
    """Whether normalised pattern segments match a type's segments (no index, any input)."""
    if GLOBSTAR not in pattern:
        if len(pattern) != len(segments):
            return False
        return all(p in (STAR, s) for p, s in zip(pattern, segments, strict=True))
    # reachable[j]: the pattern prefix read so far can consume exactly segments[:j]
    n = len(segments)
    reachable = [True] + [False] * n
    for p in pattern:
        if p == GLOBSTAR:
            seen = False
            for j in range(n + 1):
                seen = seen or reachable[j]
                reachable[j] = seen
        else:
            for j in range(n, 0, -1):
                reachable[j] = reachable[j - 1] and (p == STAR or p == segments[j - 1])
            reachable[0] = False
    return reachable[n]


def type_pattern_matches(pattern: str, event_type: str) -> bool:
    """Whether ``event_type`` matches ``pattern`` (invalid patterns raise InvalidArgument)."""
    return segments_match(parse_pattern(pattern, "pattern"), event_type.split("."))
