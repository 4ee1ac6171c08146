"""The outbox marks enqueued executions off the publish path: the publishes of a short
while share one mark transaction, and what is still unmarked when the outbox stops is
marked on the way out. A store fake; the in-process work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from neoactions.server.engine.outbox import Outbox
from neoactions.server.errors import Unavailable
from neoactions.server.model import Execution, ExecutionMode
from neoactions.server.queue import InProcessWorkQueue


class _Store:
    def __init__(self) -> None:
        self.marks: list[tuple[str, list[str]]] = []
        self.down = False

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        if self.down:
            raise Unavailable("database down")
        self.marks.append((tenant, list(execution_ids)))

    async def take_for_queue(self, *args: object) -> list[tuple[str, int]]:
        return []

    async def reset_queued(self, tenant: str) -> int:
        return 0


def _queued(n: int, tenant: str = "admin") -> list[Execution]:
    return [
        Execution(
            id=f"{tenant}-{i}",
            tenant=tenant,
            action_id="a",
            action_name="ship",
            action_version=1,
            input={},
            mode=ExecutionMode.QUEUED,
        )
        for i in range(n)
    ]


async def _tenants() -> list[str]:
    return ["admin", "acme"]


async def test_publishes_of_a_short_while_share_one_mark_per_tenant_after_their_enqueue() -> None:
    store, queue = _Store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)  # type: ignore[arg-type]
    running = asyncio.create_task(outbox.run())
    try:
        first, second, other = _queued(2), _queued(3)[2:], _queued(1, "acme")
        await outbox.enqueue_new("admin", first)
        await outbox.enqueue_new("admin", second)
        await outbox.enqueue_new("acme", other)
        # on the queue at once, not marked yet: the publish did not wait for a transaction
        delivered = await queue.consume("w", 10, 0.1)
        assert sorted(d.item.execution_id for d in delivered) == ["acme-0", "admin-0", "admin-1", "admin-2"]
        assert store.marks == []
        async with asyncio.timeout(2):
            while len(store.marks) < 2:  # noqa: ASYNC110 - polling the fake
                await asyncio.sleep(0.01)
        assert sorted(store.marks) == [("acme", ["acme-0"]), ("admin", ["admin-0", "admin-1", "admin-2"])]
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_what_is_unmarked_when_the_outbox_stops_is_marked_on_the_way_out() -> None:
    store, queue = _Store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)  # type: ignore[arg-type]
    running = asyncio.create_task(outbox.run())
    await asyncio.sleep(0.01)
    await outbox.enqueue_new("admin", _queued(2))
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert running.cancelled()
    assert store.marks == [("admin", ["admin-0", "admin-1"])]


async def test_a_failed_mark_is_left_to_the_sweep_and_later_marks_go_on() -> None:
    store, queue = _Store(), InProcessWorkQueue()
    outbox = Outbox(store, queue, _tenants)  # type: ignore[arg-type]
    store.down = True
    await outbox.enqueue_new("admin", _queued(1))
    await outbox.mark_enqueued()
    assert store.marks == []
    store.down = False
    await outbox.enqueue_new("acme", _queued(1, "acme"))
    await outbox.mark_enqueued()
    assert store.marks == [("acme", ["acme-0"])]
