"""Durations and moments as the commands take them: ``90s``, ``30m``, ``24h``, ``30d``,
``2w``; a moment is such an age before now, a date (``2026-12-01``) or an ISO 8601 time
(UTC unless it says)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def is_duration(text: str) -> bool:
    return _DURATION.match(text.strip().lower()) is not None


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``30d``, ``2w``; a usage error naming ``option`` otherwise."""
    found = _DURATION.match(text.strip().lower())
    if found is None or float(found.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30m, 24h, 30d or 2w", param_hint=option)
    return timedelta(seconds=float(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def parse_moment(text: str | None, option: str, now: datetime | None = None) -> datetime | None:
    """An age before ``now`` (default: now), a date or an ISO time; ``None`` for no text."""
    if not text:
        return None
    if is_duration(text):
        return (now or datetime.now(UTC)) - parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an age (30m, 24h, 2d, 1w), a date (2026-12-01) nor an ISO time"
            " (2026-12-01T12:00:00Z)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = ["is_duration", "parse_duration", "parse_moment"]
