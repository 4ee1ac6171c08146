"""``InProcessWorkQueue``: the work queue of the embedded mode, inside one process.

Same contract as the Redis one (consumer group semantics, reclaim after idle, fairness,
priority bands), so the engine runs queued mode the same way with or without Redis.
Its contents die with the process; ``lost_contents`` says so on first use, and the
outbox then enqueues again what the store still records as queued.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from neoactions.server.queue.port import BANDS, Delivery, QueueItem, fair_share


@dataclass(slots=True)
class _Pending:
    delivery: Delivery
    consumer: str
    since: float


class InProcessWorkQueue:
    def __init__(self) -> None:
        self._streams: dict[tuple[str, int], collections.deque[Delivery]] = collections.defaultdict(collections.deque)
        self._tenants: list[str] = []
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._rotation = 0
        self._arrived = asyncio.Event()
        self._fresh = True

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        for item in items:
            if item.tenant not in self._tenants:
                self._tenants.append(item.tenant)
            self._streams[(item.tenant, item.priority)].append(Delivery(item, f"{next(self._ids)}-0"))
        if items:
            self._arrived.set()

    async def consume(self, consumer: str, count: int, block_seconds: float = 0.0) -> list[Delivery]:
        got = self._take(consumer, count)
        if got or block_seconds <= 0:
            return got
        self._arrived.clear()
        try:
            async with asyncio.timeout(block_seconds):
                await self._arrived.wait()
        except TimeoutError:
            return []
        return self._take(consumer, count)

    def _take(self, consumer: str, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        if not self._tenants:
            return out
        self._rotation = (self._rotation + 1) % len(self._tenants)
        order = self._tenants[self._rotation :] + self._tenants[: self._rotation]
        share = fair_share(count, len(order))
        now = time.monotonic()
        for band in BANDS:
            for tenant in order:
                stream = self._streams.get((tenant, band))
                taken = 0
                while stream and taken < share and len(out) < count:
                    delivery = stream.popleft()
                    self._pending[delivery.entry_id] = _Pending(delivery, consumer, now)
                    out.append(delivery)
                    taken += 1
            if len(out) >= count:
                break
        return out

    async def reclaim(self, consumer: str, min_idle_seconds: float, count: int) -> list[Delivery]:
        now = time.monotonic()
        out: list[Delivery] = []
        for p in self._pending.values():
            if len(out) >= count:
                break
            if now - p.since >= min_idle_seconds:
                p.consumer, p.since = consumer, now
                out.append(p.delivery)
        return out

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        now = time.monotonic()
        for d in deliveries:
            p = self._pending.get(d.entry_id)
            if p is not None:
                p.consumer, p.since = consumer, now

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self._pending.pop(d.entry_id, None)

    async def lost_contents(self) -> bool:
        fresh, self._fresh = self._fresh, False
        return fresh


__all__ = ["InProcessWorkQueue"]
