"""The queue consumer reads the next entries while earlier ones are being claimed, holds worker
slots for what it read, and pauses its reads while the store refuses claims. Fakes of the
store and the dispatcher; the in-process work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from neoactions.server.engine.consumer import QueueConsumer
from neoactions.server.engine.dispatcher import Job
from neoactions.server.errors import Unavailable
from neoactions.server.model import Execution
from neoactions.server.queue import InProcessWorkQueue, QueueItem


class _Store:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.claims: list[list[str]] = []
        self.down = False

    async def claim(self, tenant: str, ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        self.claims.append(list(ids))
        if self.down:
            raise Unavailable("database down")
        await self.release.wait()
        return [
            Execution(id=i, tenant=tenant, action_id="a", action_name="ship", action_version=1, input={}) for i in ids
        ]


class _Dispatcher:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.reserved = 0
        self.jobs: list[Job] = []

    def free_slots(self) -> int:
        return self.slots - self.reserved - len(self.jobs)

    def reserve(self, wanted: int) -> int:
        granted = min(wanted, self.free_slots())
        self.reserved += granted
        return granted

    def give_back(self, slots: int) -> None:
        self.reserved -= slots

    def submit(self, job: Job) -> None:
        if job.reserved:
            job.reserved = False
            self.reserved -= 1
        self.jobs.append(job)

    async def slot_freed(self) -> None:
        await asyncio.sleep(3600)


class _Leases:
    owner = "me"

    def until(self) -> datetime:
        return datetime(2030, 1, 1)


def _consumer(store: _Store, dispatcher: _Dispatcher, queue: InProcessWorkQueue) -> QueueConsumer:
    return QueueConsumer(queue, store, dispatcher, _Leases(), 30.0, batch=2)  # type: ignore[arg-type]


async def _until(check: object) -> None:
    async with asyncio.timeout(2):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110 - polling the fakes
            await asyncio.sleep(0.01)


async def test_reads_go_on_while_earlier_entries_are_claimed_and_hold_their_worker_slots() -> None:
    store, dispatcher, queue = _Store(), _Dispatcher(slots=10), InProcessWorkQueue()
    running = asyncio.create_task(_consumer(store, dispatcher, queue).run())
    try:
        await queue.enqueue([QueueItem("admin", f"x{i}", 2) for i in range(5)])
        # three batches (of at most 2) are being claimed at once; none has come back yet
        await _until(lambda: len(store.claims) == 3)
        assert sorted(i for ids in store.claims for i in ids) == [f"x{i}" for i in range(5)]
        assert dispatcher.reserved == 5 and dispatcher.free_slots() == 5
        store.release.set()
        await _until(lambda: len(dispatcher.jobs) == 5)
        assert dispatcher.reserved == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_reads_pause_while_the_store_refuses_claims() -> None:
    store, dispatcher, queue = _Store(), _Dispatcher(slots=10), InProcessWorkQueue()
    store.down = True
    running = asyncio.create_task(_consumer(store, dispatcher, queue).run())
    try:
        await queue.enqueue([QueueItem("admin", "x0", 2)])
        await _until(lambda: len(store.claims) == 1)
        await queue.enqueue([QueueItem("admin", f"y{i}", 2) for i in range(6)])
        await asyncio.sleep(0.3)
        # the read under way when the claim failed takes one batch; then reading waits out the
        # pause (0.5 s), leaving the rest on the queue; the failed claims gave their slots back
        assert store.claims == [["x0"], ["y0", "y1"]] and dispatcher.reserved == 0
        store.down = False
        store.release.set()
        await _until(lambda: len(dispatcher.jobs) == 4)
        assert sorted(j.execution.id for j in dispatcher.jobs) == [f"y{i}" for i in range(2, 6)]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
