"""The outbox marks enqueued executions off the publish path: the publishes of a short
while share one mark transaction, and what is still unmarked when the outbox stops is
marked on the way out. The in-memory store, recording its mark transactions; the
in-process work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from neoactions.domain.errors import Unavailable
from neoactions.domain.ids import new_id
from neoactions.domain.model import Execution, ExecutionMode, Tenant, utcnow
from neoactions.server.engine.outbox import Outbox
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.queue import InProcessWorkQueue
from tests.conftest import eventually


class _Store(MemoryStore):
    """Records each mark transaction; ``down`` makes the database unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[tuple[str, list[str]]] = []
        self.down = False

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        if self.down:
            raise Unavailable("database down")
        self.marks.append((tenant, list(execution_ids)))
        await super().mark_queued(tenant, execution_ids, at)

    async def unmarked(self, tenant: str) -> list[str]:
        """The ids of the queued executions not marked (what a sweep would take, were they not
        just stored)."""
        hour = timedelta(hours=1)
        taken = await self.take_for_queue(tenant, 100, utcnow() - hour, utcnow() + hour)
        return sorted(x for x, _ in taken)


async def _store() -> _Store:
    store = _Store()
    await store.open()
    await store.create_tenant(Tenant("acme"))
    return store


async def _queued(store: _Store, n: int, tenant: str = "admin") -> list[str]:
    """``n`` queued executions just stored (the sweep leaves them to their publisher)."""
    executions = [
        Execution(
            id=new_id(),
            tenant=tenant,
            action_id=new_id(),
            action_name="ship",
            action_version=1,
            input={},
            mode=ExecutionMode.QUEUED,
        )
        for _ in range(n)
    ]
    await store.append(tenant, [], executions)
    return [x.id for x in executions]


async def _enqueue(outbox: Outbox, store: _Store, tenant: str, ids: list[str]) -> None:
    """What the publisher does after storing them."""
    await outbox.enqueue_new(tenant, [await store.get_execution(tenant, i) for i in ids])


async def _tenants() -> list[str]:
    return ["admin", "acme"]


async def test_publishes_of_a_short_while_share_one_mark_per_tenant_after_their_enqueue() -> None:
    store, queue = await _store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)
    first, second, other = await _queued(store, 2), await _queued(store, 1), await _queued(store, 1, "acme")
    running = asyncio.create_task(outbox.run())
    try:
        await _enqueue(outbox, store, "admin", first)
        await _enqueue(outbox, store, "admin", second)
        await _enqueue(outbox, store, "acme", other)
        # on the queue at once, not marked yet: the publish did not wait for a transaction
        delivered = await queue.consume("w", 10, 0.1)
        assert sorted(d.item.execution_id for d in delivered) == sorted(first + second + other)
        assert store.marks == []
        await eventually(lambda: len(store.marks) >= 2, within=2, what="both tenants' marks")
        assert sorted(store.marks) == sorted([("acme", other), ("admin", first + second)])
        assert await store.unmarked("admin") == await store.unmarked("acme") == []
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_what_is_unmarked_when_the_outbox_stops_is_marked_on_the_way_out() -> None:
    store, queue = await _store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)
    ids = await _queued(store, 2)
    running = asyncio.create_task(outbox.run())
    await asyncio.sleep(0)  # the outbox starts: its way out is under way from here
    await _enqueue(outbox, store, "admin", ids)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert running.cancelled()
    assert store.marks == [("admin", ids)]
    assert await store.unmarked("admin") == []


async def test_a_failed_mark_is_left_to_the_sweep_and_later_marks_go_on() -> None:
    store, queue = await _store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)
    lost, later = await _queued(store, 1), await _queued(store, 1, "acme")
    store.down = True
    await _enqueue(outbox, store, "admin", lost)
    await outbox.mark_enqueued()
    assert store.marks == []
    store.down = False
    await _enqueue(outbox, store, "acme", later)
    await outbox.mark_enqueued()
    assert store.marks == [("acme", later)]
    assert await store.unmarked("acme") == []
    assert await store.unmarked("admin") == lost  # the sweep takes it
