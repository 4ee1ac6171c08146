"""Waking the loops that pick stored work up: now, or when it is due."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from neoactions.domain.model import Execution, ExecutionMode, utcnow


class Wakeup:
    """An event a loop waits on, settable now or at a given time."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()

    def set(self) -> None:
        self._event.set()

    def set_at(self, when: datetime) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when - utcnow()).total_seconds())
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            if timer is not None:
                self._timers.discard(timer)
            self._event.set()

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)

    async def wait(self, seconds: float) -> None:
        """Until set, or ``seconds`` at most; then clear."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()


@dataclass(frozen=True, slots=True)
class DueWork:
    """The loops of this process that pick stored work up when it is due: the outbox
    (``queued`` executions go through the work queue) and, in a process that runs work,
    the scheduler (the others are claimed from the store)."""

    outbox: Wakeup
    scheduler: Wakeup | None

    def due(self, ex: Execution, when: datetime) -> None:
        """``ex`` was stored to run again at ``when`` and its lease given up."""
        if ex.mode is ExecutionMode.QUEUED:
            self.outbox.set_at(when)
        elif self.scheduler is not None:
            self.scheduler.set_at(when)


__all__ = ["DueWork", "Wakeup"]
