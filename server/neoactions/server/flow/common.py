"""Pieces both implementations share: windows, lease ids, choosing the binding refusal."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from neoactions.domain.model import RateLimit
from neoactions.server.flow.port import RefusalReason, Refused

MINUTE = 60.0
HOUR = 3600.0


def rate_windows(limit: RateLimit) -> list[tuple[int, float]]:
    """``(limit, window_seconds)`` pairs of the limited windows of ``limit``."""
    return [(n, w) for n, w in ((limit.per_minute, MINUTE), (limit.per_hour, HOUR)) if n > 0]


def new_lease_id(execution_id: str) -> str:
    """Unique per admission, and names its execution so an operator can see who holds a slot."""
    return f"{execution_id}/{secrets.token_hex(6)}"


def binding_refusal(refusals: Iterable[tuple[RefusalReason, float]]) -> Refused | None:
    """The refusal that waits longest (every limit must pass, so the longest wait binds).

    Ties keep the first, so callers list refusals in order of importance.
    """
    best: Refused | None = None
    for reason, wait in refusals:
        if best is None or wait > best.retry_after_seconds:
            best = Refused(reason, wait)
    return best


__all__ = ["HOUR", "MINUTE", "binding_refusal", "new_lease_id", "rate_windows"]
