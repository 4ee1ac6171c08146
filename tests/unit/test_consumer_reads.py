"""The queue consumer reads the next entries while earlier ones are being claimed, holds worker
slots for what it read, and pauses its reads while the store refuses claims. The in-memory
store, recording its claims; a fake of the dispatcher; the in-process work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from neoactions.domain.errors import Unavailable
from neoactions.domain.ids import new_id
from neoactions.domain.model import Execution, ExecutionMode
from neoactions.server.engine.acks import Acknowledgements
from neoactions.server.engine.consumer import QueueConsumer
from neoactions.server.engine.dispatcher import Reservation
from neoactions.server.engine.jobs import Job
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.queue import InProcessWorkQueue, QueueItem
from tests.conftest import eventually


class _Store(MemoryStore):
    """Each ``claim`` is recorded by the names of its executions and waits for ``release``;
    ``down`` makes the database unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.claims: list[list[str]] = []
        self.down = False
        self.names: dict[str, str] = {}

    async def stored(self, names: Sequence[str]) -> list[str]:
        """The ids of queued executions named ``names``, just stored."""
        executions = [
            Execution(
                id=new_id(),
                tenant="admin",
                action_id=new_id(),
                action_name="ship",
                action_version=1,
                input={},
                mode=ExecutionMode.QUEUED,
            )
            for _ in names
        ]
        await self.append("admin", [], executions)
        self.names.update((x.id, n) for x, n in zip(executions, names, strict=True))
        return [x.id for x in executions]

    async def claim(self, tenant: str, ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        self.claims.append([self.names[i] for i in ids])
        if self.down:
            raise Unavailable("database down")
        await self.release.wait()
        return await super().claim(tenant, ids, owner, until)


async def _store() -> _Store:
    store = _Store()
    await store.open()
    return store


class _Dispatcher:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.reserved = 0
        self.jobs: list[Job] = []

    def free_slots(self) -> int:
        return self.slots - self.reserved - len(self.jobs)

    def reserve(self, wanted: int) -> Reservation:
        granted = min(wanted, self.free_slots())
        self.reserved += granted
        return Reservation(self, granted)  # type: ignore[arg-type]

    def _give_back(self, slots: int) -> None:
        self.reserved -= slots

    def submit(self, job: Job) -> None:
        self.jobs.append(job)

    async def slot_freed(self) -> None:
        await asyncio.sleep(3600)


class _Leases:
    owner = "me"
    ttl = timedelta(seconds=15)

    def held(self) -> list[Job]:
        return []

    def until(self) -> datetime:
        return datetime(2030, 1, 1)


def _consumer(store: _Store, dispatcher: _Dispatcher, queue: InProcessWorkQueue) -> QueueConsumer:
    acks = Acknowledgements(queue)
    return QueueConsumer(queue, store, dispatcher, _Leases(), acks, 30.0, batch=2)  # type: ignore[arg-type]


async def _until(check: Callable[[], bool]) -> None:
    await eventually(check, within=2, what="the fakes' state")


async def test_reads_go_on_while_earlier_entries_are_claimed_and_hold_their_worker_slots() -> None:
    store, dispatcher, queue = await _store(), _Dispatcher(slots=10), InProcessWorkQueue()
    running = asyncio.create_task(_consumer(store, dispatcher, queue).run())
    try:
        await queue.enqueue([QueueItem("admin", i, 2) for i in await store.stored([f"x{i}" for i in range(5)])])
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
    store, dispatcher, queue = await _store(), _Dispatcher(slots=10), InProcessWorkQueue()
    store.down = True
    running = asyncio.create_task(_consumer(store, dispatcher, queue).run())
    try:
        await queue.enqueue([QueueItem("admin", i, 2) for i in await store.stored(["x0"])])
        await _until(lambda: len(store.claims) == 1)
        await queue.enqueue([QueueItem("admin", i, 2) for i in await store.stored([f"y{i}" for i in range(6)])])
        await asyncio.sleep(0.3)
        # the read under way when the claim failed takes one batch; then reading waits out the
        # pause (0.5 s), leaving the rest on the queue; the failed claims gave their slots back
        assert store.claims == [["x0"], ["y0", "y1"]] and dispatcher.reserved == 0
        store.down = False
        store.release.set()
        await _until(lambda: len(dispatcher.jobs) == 4)
        assert sorted(store.names[j.execution.id] for j in dispatcher.jobs) == [f"y{i}" for i in range(2, 6)]
        assert {j.execution.lease_owner for j in dispatcher.jobs} == {"me"}  # leased in the store
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
