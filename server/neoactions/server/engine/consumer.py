"""The queue consumer of a worker process: queued-mode executions from the work queue
into this process's dispatcher.

A delivered entry only names an execution; the consumer leases it in the store (one
batched claim per tenant) before running it. Entries are acknowledged after the
outcome is stored (a final status, or a retry the outbox enqueues when due), in
batches. An entry whose execution is not claimable is acknowledged when the store
says there is nothing left to do for it (final, or a retry not yet due); when another
live process holds the lease it stays pending — that process acknowledges it, or if
it dies, the entry is reclaimed after the visibility timeout and claimed here.
In-flight entries are touched as often as leases are renewed, so long attempts are not
reclaimed while their worker lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import ExecutionStatus, utcnow
from neoactions.server.engine.acks import Acknowledgements
from neoactions.server.engine.dispatcher import Dispatcher, Reservation
from neoactions.server.engine.jobs import Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.queue import Delivery, WorkQueue
from neoactions.server.store import LeaseStore

log = logging.getLogger(__name__)

#: how long a worker waits on an empty queue per read (bounds shutdown and tenant discovery)
_BLOCK_SECONDS = 1.0
_BACKOFF_SECONDS = 0.5
#: batches of entries being claimed while the next read waits for more
_TAKES_IN_FLIGHT = 4


class QueueConsumer:
    def __init__(
        self,
        queue: WorkQueue,
        store: LeaseStore,
        dispatcher: Dispatcher,
        leases: LeaseKeeper,
        acks: Acknowledgements,
        visibility_seconds: float,
        batch: int = 64,
    ) -> None:
        self._queue = queue
        self._store = store
        self._dispatcher = dispatcher
        self._leases = leases
        self._name = leases.owner
        self._visibility = visibility_seconds
        self._batch = batch
        self._acks = acks
        self._takes: set[asyncio.Task[None]] = set()
        #: after a claim failed, reads wait until then (``time.monotonic``)
        self._resume_reads_at = 0.0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._read(tg))
            tg.create_task(self._reclaim())
            tg.create_task(self._acks.run())
            tg.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        """Touch the entries of jobs still held here, as often as their leases are renewed."""
        while True:
            await asyncio.sleep(self._leases.ttl.total_seconds() / 3)
            await self.touch(self._leases.held())

    async def touch(self, jobs: list[Job]) -> None:
        """Keep the entries of jobs still running here from being reclaimed."""
        deliveries = [j.delivery for j in jobs if j.delivery is not None]
        if not deliveries:
            return
        try:
            await self._queue.touch(self._name, deliveries)
        except NeoActionsError as exc:
            log.warning("could not touch in-flight queue entries: %s", exc)

    async def _read(self, tg: asyncio.TaskGroup) -> None:
        """Read entries for the free workers; claim each batch in a task of its own, so the next
        read waits on the queue while the claim waits on the store."""
        while True:
            free = self._dispatcher.free_slots()
            if free <= 0:
                await self._dispatcher.slot_freed()
                continue
            if len(self._takes) >= _TAKES_IN_FLIGHT:
                await asyncio.wait(self._takes, return_when=asyncio.FIRST_COMPLETED)
                continue
            if (pause := self._resume_reads_at - time.monotonic()) > 0:
                await asyncio.sleep(pause)
                continue
            try:
                deliveries = await self._queue.consume(self._name, min(free, self._batch), _BLOCK_SECONDS)
            except NeoActionsError as exc:
                # Redis is down: the work waits in the store (and in Redis) meanwhile
                log.warning("reading the work queue failed (retrying): %s", exc)
                await asyncio.sleep(_BACKOFF_SECONDS)
                continue
            if deliveries:
                take = tg.create_task(self._take_reserved(deliveries, self._dispatcher.reserve(len(deliveries))))
                self._takes.add(take)
                take.add_done_callback(self._takes.discard)

    async def _take_reserved(self, deliveries: Sequence[Delivery], reservation: Reservation) -> None:
        try:
            await self._take(deliveries, reservation)
        except NeoActionsError as exc:
            # the store is down: these entries stay pending (reclaimed after the visibility
            # timeout) and reading pauses, leaving the rest to other workers meanwhile
            log.warning("claiming %d queue entries failed (pausing reads): %s", len(deliveries), exc)
            self._resume_reads_at = time.monotonic() + _BACKOFF_SECONDS

    async def _reclaim(self) -> None:
        while True:
            await asyncio.sleep(self._visibility / 2)
            try:
                deliveries = await self._queue.reclaim(self._name, self._visibility, self._batch)
                if deliveries:
                    log.info("reclaimed %d queue entries of stopped consumers", len(deliveries))
                await self._take(deliveries)
            except NeoActionsError as exc:
                log.warning("reclaiming queue entries failed (retrying): %s", exc)

    async def _take(self, deliveries: Sequence[Delivery], reservation: Reservation | None = None) -> None:
        """Claim and queue the executions of ``deliveries``, on the worker slots reserved for
        them if any (those not taken are given back)."""
        by_tenant: dict[str, dict[str, Delivery]] = {}
        for d in deliveries:
            by_tenant.setdefault(d.item.tenant, {})[d.item.execution_id] = d
        with reservation or self._dispatcher.reserve(0) as slots:
            for tenant, entries in by_tenant.items():
                claimed = await self._store.claim(tenant, list(entries), self._leases.owner, self._leases.until())
                for ex in claimed:
                    slots.submit(Job(ex, delivery=entries.pop(ex.id)))
                if entries:
                    await self._settle_unclaimed(tenant, entries)

    async def _settle_unclaimed(self, tenant: str, entries: dict[str, Delivery]) -> None:
        states = await self._store.execution_states(tenant, list(entries))
        now = utcnow()
        done: list[Delivery] = []
        for execution_id, delivery in entries.items():
            state = states.get(execution_id)
            if state is None or state.status.is_final:
                done.append(delivery)
            elif (
                state.status in (ExecutionStatus.SCHEDULED, ExecutionStatus.WAITING)
                and (state.next_attempt_at is None or state.next_attempt_at > now)
                and (state.next_attempt_at is not None or state.status is ExecutionStatus.WAITING)
                and not (state.lease_owner and state.lease_expires_at and state.lease_expires_at > now)
            ):
                # a stored retry, or a suspended execution: the outbox enqueues it again when due
                done.append(delivery)
        if done:
            await self._queue.ack(done)


__all__ = ["QueueConsumer"]
