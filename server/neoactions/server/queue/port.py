"""The work-queue port: how queued-mode executions travel from the process that accepted
them to any worker process.

The store stays the source of truth: a queue entry only names an execution
(tenant, id, priority). A consumer leases the execution in the store before it runs
it and acknowledges the entry only after the result is stored; an entry delivered to
a consumer that dies is handed to another after a visibility timeout (``reclaim``).

Fairness and priority are part of the contract: ``consume`` serves higher priority
first and, within a priority, takes at most an even share of the batch from each
tenant, so one tenant's backlog never starves another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: priority bands, highest first (``Priority`` values)
BANDS = (4, 3, 2, 1)


@dataclass(frozen=True, slots=True)
class QueueItem:
    tenant: str
    execution_id: str
    #: a ``Priority`` value (1 = low .. 4 = critical)
    priority: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """An item handed to one consumer, pending until acknowledged."""

    item: QueueItem
    #: the entry's id in its stream (what ``ack``/``touch`` name)
    entry_id: str


class WorkQueue(Protocol):
    """A consumer-group queue. Errors talking to the backend raise ``Unavailable``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, items: Sequence[QueueItem]) -> None:
        """Append ``items`` (one round trip for the batch)."""

    async def consume(self, consumer: str, count: int, block_seconds: float = 0.0) -> list[Delivery]:
        """About ``count`` new entries for ``consumer`` (each tenant's fair share rounds up),
        highest priority first and fair across tenants; waits up to ``block_seconds`` when there
        are none. Every entry delivered is returned: none is left pending unseen."""

    async def reclaim(self, consumer: str, min_idle_seconds: float, count: int) -> list[Delivery]:
        """Take over about ``count`` entries (up to ``count`` per stream) delivered to any consumer
        and neither acknowledged nor touched for ``min_idle_seconds`` (their consumer is presumed
        dead); returns every entry taken."""

    async def touch(self, consumer: str, deliveries: Sequence[Delivery]) -> None:
        """Reset the idle time of entries ``consumer`` is still working on (keeps them from reclaim)."""

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge (and drop) entries whose outcome is stored."""

    async def lost_contents(self) -> bool:
        """``True`` once after the queue's contents were lost (a backend restart without persistence,
        or the first use): entries recorded as enqueued must be enqueued again."""


def fair_share(count: int, tenants: int) -> int:
    """How many entries one tenant may contribute to a batch of ``count``."""
    return max(1, -(-count // max(1, tenants)))


__all__ = ["BANDS", "Delivery", "QueueItem", "WorkQueue", "fair_share"]
