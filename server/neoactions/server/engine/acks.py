"""Acknowledging work-queue entries once their executions' outcomes are stored, in batches."""

from __future__ import annotations

import asyncio
import logging

from neoactions.domain.errors import NeoActionsError
from neoactions.server.queue import Delivery, WorkQueue

log = logging.getLogger(__name__)

#: acks of jobs finishing together gather this long into one round trip
_GATHER_SECONDS = 0.01


class Acknowledgements:
    """The dispatcher adds the entry of each job whose outcome (final, or a stored retry) is
    recorded; the queue consumer runs :meth:`run`, which acknowledges them in batches."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue = queue
        self._pending: list[Delivery] = []
        self._ready = asyncio.Event()

    def add(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await asyncio.sleep(_GATHER_SECONDS)
            batch, self._pending = self._pending, []
            try:
                await self._queue.ack(batch)
            except NeoActionsError as exc:
                # the outcomes are stored: redelivered entries are acknowledged when seen again
                log.warning("acknowledging %d queue entries failed: %s", len(batch), exc)


__all__ = ["Acknowledgements"]
