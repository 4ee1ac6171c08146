"""Fair shares of a bounded pool of workers: tenants take turns, none may hold them all.

A runner with a fixed number of workers (wasm guest threads, one-shot container
slots) must not let one tenant's long jobs keep every other tenant's short ones
waiting. Two rules do it:

- **a cap per tenant**: a tenant holds at most ``per_tenant`` workers at once, by
  default all but a quarter of them (at least one), so while a tenant's long jobs
  run a worker stays free for everybody else;
- **turns**: when a worker frees up, the tenants with waiting jobs are served in
  round-robin order (each tenant's own jobs first come, first served), so a
  tenant that queued a thousand jobs gets the next worker no more often than a
  tenant that queued one.

:class:`FairQueue` is the pure decision (no I/O, no clock, no asyncio);
:class:`FairSlots` puts it behind ``await acquire(tenant)`` / ``release(tenant)``
for any event loop and thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

W = TypeVar("W")


def default_tenant_share(capacity: int) -> int:
    """Workers one tenant may hold by default: all but a quarter (at least one kept free)."""
    if capacity <= 1:
        return 1
    return capacity - max(1, capacity // 4)


class FairQueue(Generic[W]):
    """Who gets the next worker. Waiters are opaque values handed back when granted."""

    def __init__(self, capacity: int, per_tenant: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.per_tenant = max(1, min(capacity, per_tenant if per_tenant is not None else capacity))
        self.total = 0
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[W]] = {}
        #: tenants with waiters, in the order they get their next turn
        self._turns: deque[str] = deque()

    def held(self, tenant: str) -> int:
        return self._held.get(tenant, 0)

    def waiting(self, tenant: str | None = None) -> int:
        if tenant is not None:
            return len(self._waiting.get(tenant, ()))
        return sum(len(q) for q in self._waiting.values())

    def request(self, tenant: str, waiter: W) -> list[tuple[str, W]]:
        """Queue ``waiter`` for ``tenant``; returns the waiters granted a worker now."""
        queue = self._waiting.get(tenant)
        if queue is None:
            queue = self._waiting[tenant] = deque()
            self._turns.append(tenant)
        queue.append(waiter)
        return self._dispatch()

    def release(self, tenant: str) -> list[tuple[str, W]]:
        """A worker ``tenant`` held is free; returns the waiters granted one now."""
        held = self._held.get(tenant, 0)
        if held <= 0:
            raise RuntimeError(f"tenant {tenant!r} released a worker it does not hold")
        if held == 1:
            del self._held[tenant]
        else:
            self._held[tenant] = held - 1
        self.total -= 1
        return self._dispatch()

    def withdraw(self, tenant: str, waiter: W) -> bool:
        """Take a waiter out of the queue; False if it is not waiting (already granted)."""
        queue = self._waiting.get(tenant)
        if queue is None:
            return False
        try:
            queue.remove(waiter)
        except ValueError:
            return False
        if not queue:
            del self._waiting[tenant]
            self._turns.remove(tenant)
        return True

    def _dispatch(self) -> list[tuple[str, W]]:
        granted: list[tuple[str, W]] = []
        while self.total < self.capacity and self._turns:
            # the first tenant in turn order that is below its cap
            for _ in range(len(self._turns)):
                if self._held.get(self._turns[0], 0) < self.per_tenant:
                    break
                self._turns.rotate(-1)
            else:
                break  # everyone waiting holds their share already
            tenant = self._turns.popleft()
            queue = self._waiting[tenant]
            granted.append((tenant, queue.popleft()))
            self._held[tenant] = self._held.get(tenant, 0) + 1
            self.total += 1
            if queue:
                self._turns.append(tenant)  # back of the line
            else:
                del self._waiting[tenant]
        return granted


@dataclass(eq=False, slots=True)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class FairSlots:
    """:class:`FairQueue` for tasks of any event loop (and releases from any thread)."""

    def __init__(self, capacity: int, per_tenant: int | None = None) -> None:
        self._queue: FairQueue[_Waiter] = FairQueue(capacity, per_tenant)
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._queue.capacity

    @property
    def per_tenant(self) -> int:
        return self._queue.per_tenant

    def held(self, tenant: str) -> int:
        with self._lock:
            return self._queue.held(tenant)

    def waiting(self, tenant: str | None = None) -> int:
        with self._lock:
            return self._queue.waiting(tenant)

    async def acquire(self, tenant: str) -> None:
        """Wait for a worker for ``tenant``; pair with exactly one :meth:`release`."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, loop.create_future())
        with self._lock:
            granted = self._queue.request(tenant, waiter)
        self._wake(granted)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                withdrawn = self._queue.withdraw(tenant, waiter)
            if not withdrawn:  # granted while being cancelled: pass the worker on
                self.release(tenant)
            raise

    def release(self, tenant: str) -> None:
        """Give back a worker (safe from any thread)."""
        with self._lock:
            granted = self._queue.release(tenant)
        self._wake(granted)

    @contextlib.asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        await self.acquire(tenant)
        try:
            yield
        finally:
            self.release(tenant)

    def _wake(self, granted: list[tuple[str, _Waiter]]) -> None:
        for tenant, waiter in granted:
            try:
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
            except RuntimeError:  # its loop is closed: nobody will use the worker
                self.release(tenant)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


__all__ = ["FairQueue", "FairSlots", "default_tenant_share"]
