"""A token bucket: how a background replay keeps to its rate and leaves room for live traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; :meth:`take` waits for its tokens."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def delay(self, n: float) -> float:
        """Seconds until ``n`` tokens are there (0 when they are)."""
        self._refill()
        missing = n - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate

    async def take(self, n: float) -> None:
        """Wait until ``n`` tokens (at most ``burst``) are there, and spend them."""
        n = min(n, self.burst)
        wait = self.delay(n)
        if wait > 0:
            await asyncio.sleep(wait)
            self._refill()
        # what the clock's rounding left missing is owed: the next take waits for it
        self._tokens -= n


__all__ = ["TokenBucket"]
