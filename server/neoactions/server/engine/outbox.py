"""The outbox of queued mode: every queued execution the store says is due and not on the
work queue gets there, whatever crashed in between.

The publisher enqueues what it just stored; the outbox marks it queued (``mark_queued``)
shortly after, in one transaction for every publish of the last ``_MARK_GATHER`` seconds,
off the publish path (the mark is only there to keep the sweep from enqueueing it again,
and the sweep leaves executions younger than ``_SETTLE`` alone). A crash between the
commit and the enqueue, Redis being down, a stored retry coming due, or a lease given up
on shutdown all leave executions unmarked, and the sweep here takes them
(``take_for_queue``, one batched statement per tenant) and enqueues them. When the
queue lost its contents (Redis restarted without persistence), every mark is reset
first, so everything unfinished is enqueued again. Duplicates are harmless: a consumer
runs an execution only under its lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import Execution, utcnow
from neoactions.server.engine.wakeup import Wakeup
from neoactions.server.queue import QueueItem, WorkQueue
from neoactions.server.store import OutboxStore

log = logging.getLogger(__name__)

#: executions taken per tenant per statement
_SWEEP_BATCH = 500
#: a freshly stored pending execution is left to its publisher for this long
_SETTLE = timedelta(seconds=2)
#: marks of enqueued executions wait this long for others to share their transaction
_MARK_GATHER = 0.05


class Outbox:
    def __init__(
        self,
        store: OutboxStore,
        queue: WorkQueue,
        tenants: Callable[[], Awaitable[list[str]]],
        sweep_interval: float = 1.0,
        requeue_after_seconds: float = 300.0,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._tenants = tenants
        self._interval = sweep_interval
        self._stale = timedelta(seconds=requeue_after_seconds)
        #: set when queued work may be due before the next sweep
        self.wakeup = wakeup or Wakeup()
        #: enqueued executions to mark, per tenant
        self._unmarked: dict[str, list[str]] = {}
        self._marks_waiting = asyncio.Event()

    async def enqueue_new(self, tenant: str, executions: Sequence[Execution]) -> None:
        """Put just-stored queued executions on the queue (the hot path); on failure they stay
        in the outbox for the sweep."""
        if not executions:
            return
        try:
            await self._queue.enqueue([QueueItem(tenant, x.id, int(x.priority)) for x in executions])
        except NeoActionsError as exc:
            log.warning("enqueueing %d executions failed; the outbox sweep retries: %s", len(executions), exc)
            self.wakeup.set_at(utcnow() + _SETTLE)
            return
        self._unmarked.setdefault(tenant, []).extend(x.id for x in executions)
        self._marks_waiting.set()

    async def run(self) -> None:
        marking = asyncio.create_task(self._mark(), name="outbox-marks")
        try:
            while True:
                try:
                    await self.sweep()
                except NeoActionsError as exc:
                    log.warning("outbox sweep failed (retrying): %s", exc)
                await self.wakeup.wait(self._interval)
        finally:
            self.wakeup.cancel()
            marking.cancel()
            await asyncio.gather(marking, return_exceptions=True)
            await self.mark_enqueued()

    async def _mark(self) -> None:
        while True:
            await self._marks_waiting.wait()
            await asyncio.sleep(_MARK_GATHER)
            await self.mark_enqueued()

    async def mark_enqueued(self) -> None:
        """Mark what was enqueued since the last call (a failure leaves it to the sweep, which
        at worst enqueues it again)."""
        self._marks_waiting.clear()
        unmarked, self._unmarked = self._unmarked, {}
        now = utcnow()
        for tenant, ids in unmarked.items():
            try:
                await self._store.mark_queued(tenant, ids, now)
            except NeoActionsError as exc:
                log.warning("marking %d enqueued executions failed: %s", len(ids), exc)

    async def sweep(self) -> int:
        """Enqueue what is due and not on the queue; returns how many."""
        tenants = await self._tenants()
        if await self._queue.lost_contents():
            reset = 0
            for tenant in tenants:
                reset += await self._store.reset_queued(tenant)
            if reset:
                log.warning("the work queue lost its contents: enqueueing %d executions again", reset)
        moved = 0
        for tenant in tenants:
            while True:
                now = utcnow()
                taken = await self._store.take_for_queue(tenant, _SWEEP_BATCH, now - self._stale, now - _SETTLE)
                if not taken:
                    break
                try:
                    await self._queue.enqueue([QueueItem(tenant, x, p) for x, p in taken])
                except NeoActionsError:
                    await self._store.unmark_queued(tenant, [x for x, _ in taken])
                    raise
                moved += len(taken)
                if len(taken) < _SWEEP_BATCH:
                    break
        return moved


__all__ = ["Outbox"]
