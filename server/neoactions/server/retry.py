"""Retry delays (the seed formula) and the classification of unexpected failures.

exponential: ``initial * 2^(attempt-1)``; linear: ``initial * attempt``; fixed:
``initial``; capped at ``max_delay_ms``; ``jitter`` adds a uniform 0..delay/4.
``attempt`` is the number of the attempt that just failed (1 for the first).
Whatever the policy says, no delay is longer than :data:`MAX_RETRY_DELAY_MS`, so a
retry's due time is always a date the store can hold.

An exception that escapes a runner's or the engine's own code (not a failure the
handler reported) is classified by :func:`classify_exception`: not retryable — the
same input would break the same code again — unless it is clearly transient (the
network or a backend said "not now").
"""

from __future__ import annotations

import errno
import random
import traceback

from neoactions.domain.errors import Unavailable
from neoactions.domain.model import ExecutionError, RetryPolicy

BACKOFFS = ("exponential", "linear", "fixed")

#: the longest wait before a retry, whatever the policy or the target asks (a year)
MAX_RETRY_DELAY_MS = 365 * 24 * 3600 * 1000.0

#: ``OSError`` numbers that say "try again later"
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EAGAIN,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.ENETUNREACH,
        errno.EPIPE,
        errno.ETIMEDOUT,
    }
)

#: longest stack kept with a classified error
_STACK_CHARS = 8192


def retry_delay_ms(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    initial = float(policy.initial_delay_ms)
    if policy.backoff == "linear":
        delay = initial * attempt
    elif policy.backoff == "fixed":
        delay = initial
    else:
        delay = initial * (2.0 ** min(max(0, attempt - 1), 1000))
    delay = min(delay, float(policy.max_delay_ms), MAX_RETRY_DELAY_MS)
    if policy.jitter and delay > 0:
        delay += (rng or random).uniform(0.0, delay / 4.0)
    return min(delay, MAX_RETRY_DELAY_MS)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` clearly says "not now" rather than "never"."""
    if isinstance(exc, ConnectionError | TimeoutError | Unavailable):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def classify_exception(exc: BaseException, type: str) -> ExecutionError:
    """The error an attempt ends with when ``exc`` escaped code that should have returned a
    result or a classified failure: of ``type``, retryable only when transient."""
    try:
        text = " ".join(str(exc).split())
    except Exception:  # a broken __str__ still ends the attempt
        text = ""
    message = f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
    if len(message) > 1000:
        message = message[:997] + "..."
    try:
        stack = "".join(traceback.format_exception(exc))[-_STACK_CHARS:]
    except Exception:  # out of memory, or a broken __str__: the message will do
        stack = ""
    return ExecutionError(type=type, message=message, stack=stack, retryable=is_transient(exc))


__all__ = ["BACKOFFS", "MAX_RETRY_DELAY_MS", "classify_exception", "is_transient", "retry_delay_ms"]
