"""Retry delays: the seed formula.

exponential: ``initial * 2^(attempt-1)``; linear: ``initial * attempt``; fixed:
``initial``; capped at ``max_delay_ms``; ``jitter`` adds a uniform 0..delay/4.
``attempt`` is the number of the attempt that just failed (1 for the first).
"""

from __future__ import annotations

import random

from neoactions.server.model import RetryPolicy

BACKOFFS = ("exponential", "linear", "fixed")


def retry_delay_ms(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    initial = float(policy.initial_delay_ms)
    if policy.backoff == "linear":
        delay = initial * attempt
    elif policy.backoff == "fixed":
        delay = initial
    else:
        delay = initial * (2.0 ** max(0, attempt - 1))
    delay = min(delay, float(policy.max_delay_ms))
    if policy.jitter and delay > 0:
        delay += (rng or random).uniform(0.0, delay / 4.0)
    return delay


__all__ = ["BACKOFFS", "retry_delay_ms"]
