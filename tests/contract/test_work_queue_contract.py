"""The ``WorkQueue`` contract, run against the in-process queue and Redis Streams."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neoactions.server.queue import InProcessWorkQueue, QueueItem, WorkQueue
from neoactions.server.queue.redisstream import RedisStreamQueue


def _root() -> object:
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("neoactions_tests_root_conftest_q", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ROOT = _root()


@pytest.fixture(params=["inprocess", "redis"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[WorkQueue]:
    if request.param == "inprocess":
        yield InProcessWorkQueue()
        return
    _ROOT.require_redis()  # type: ignore[attr-defined]
    q = RedisStreamQueue(_ROOT.REDIS_URL, f"neoactions_qtest_{uuid.uuid4().hex[:10]}")  # type: ignore[attr-defined]
    await q.open()
    try:
        yield q
    finally:
        await q.delete_all()
        await q.close()


def items(tenant: str, n: int, priority: int = 2) -> list[QueueItem]:
    return [QueueItem(tenant, f"{tenant}-{priority}-{i}", priority) for i in range(n)]


async def test_consume_then_ack_delivers_each_entry_once(queue: WorkQueue) -> None:
    await queue.enqueue(items("acme", 5))
    got = await queue.consume("c1", 10)
    assert sorted(d.item.execution_id for d in got) == sorted(i.execution_id for i in items("acme", 5))
    assert await queue.consume("c2", 10) == []
    await queue.ack(got)
    assert await queue.reclaim("c2", 0.0, 10) == []


async def test_unacknowledged_entries_are_reclaimed_after_the_visibility_timeout(queue: WorkQueue) -> None:
    await queue.enqueue(items("acme", 3))
    got = await queue.consume("dead", 10)
    assert await queue.reclaim("c2", 5.0, 10) == []  # not idle long enough
    await asyncio.sleep(0.3)
    await queue.touch("dead", got[:1])  # still being worked on
    reclaimed = await queue.reclaim("c2", 0.2, 10)
    assert sorted(d.item.execution_id for d in reclaimed) == sorted(d.item.execution_id for d in got[1:])
    await queue.ack(reclaimed)


async def test_higher_priority_first(queue: WorkQueue) -> None:
    await queue.enqueue(items("acme", 3, priority=1) + items("acme", 3, priority=4) + items("acme", 3, priority=2))
    got = await queue.consume("c", 4)
    assert [d.item.priority for d in got] == [4, 4, 4, 2]


async def test_one_tenants_backlog_does_not_starve_another(queue: WorkQueue) -> None:
    await queue.enqueue(items("big", 200))
    await queue.enqueue(items("small", 3))
    await queue.consume("c", 1)  # discovers both tenants
    got = await queue.consume("c", 10)
    tenants = [d.item.tenant for d in got]
    assert tenants.count("small") >= 2 and tenants.count("big") <= 8


async def test_blocking_consume_wakes_on_new_entries(queue: WorkQueue) -> None:
    await queue.enqueue(items("acme", 1))
    await queue.ack(await queue.consume("c", 10))

    async def later() -> None:
        await asyncio.sleep(0.2)
        await queue.enqueue(items("acme", 1, priority=3))

    task = asyncio.create_task(later())
    got = await queue.consume("c", 10, block_seconds=5.0)
    await task
    assert [d.item.priority for d in got] == [3]


async def test_lost_contents_is_reported_once(queue: WorkQueue) -> None:
    assert await queue.lost_contents() is True
    assert await queue.lost_contents() is False


async def test_blocking_consume_of_an_empty_queue_waits(queue: WorkQueue) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await queue.consume("c", 10, block_seconds=0.3) == []
    # a consumer loop over an empty queue must yield, not spin
    assert loop.time() - started >= 0.25


async def test_every_entry_read_is_returned_whatever_the_batch_size(queue: WorkQueue) -> None:
    """Reads over many streams (tenants x priorities) may deliver more than asked: nothing read
    may be dropped, or it would sit pending until the visibility timeout."""
    enqueued = [*items("a", 7, 3), *items("a", 5, 1), *items("b", 6, 2), *items("c", 4, 3), *items("c", 3, 4)]
    await queue.enqueue(enqueued)
    seen: list[str] = []
    for _ in range(50):
        got = await queue.consume("c1", 3)
        if not got:
            break
        seen += [d.item.execution_id for d in got]
    assert sorted(seen) == sorted(i.execution_id for i in enqueued)

    # what a dead consumer holds comes back whole too, whatever the count asked for
    await asyncio.sleep(0.05)
    reclaimed = await queue.reclaim("c2", 0.01, 2)
    taken = [d.item.execution_id for d in reclaimed]
    while reclaimed:
        reclaimed = await queue.reclaim("c2", 0.01, 2)
        taken += [d.item.execution_id for d in reclaimed]
    assert sorted(taken) == sorted(seen)
