"""Retention: each tenant's events and finished executions older than its policy are deleted
in the background, in bounded batches, each batch its own short transaction, so writers are
never held for long.

Events go by their ``time``; executions by when they finished (unfinished executions are
never deleted). On PostgreSQL the events table is partitioned by week (see
``persistence/pg_partitions.py`` and ``docs/event-store.md``): each sweep first creates the
coming weeks' partitions and drops whole the weeks older than the policy, then the batched
delete removes what is left older than it (in the week the cutoff falls in and in the default
partition).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from neoactions.domain.errors import InvalidArgument, NeoActionsError
from neoactions.domain.model import utcnow
from neoactions.server.eventstore.port import RetentionPolicy
from neoactions.server.store import Store

log = logging.getLogger(__name__)

BATCH = 1000
INTERVAL_SECONDS = 60.0
#: the longest policy accepted (100 years)
MAX_SECONDS = 100 * 366 * 24 * 3600


@dataclass(slots=True)
class Removed:
    events: int = 0
    executions: int = 0


def check_policy(policy: RetentionPolicy) -> None:
    for name in ("events_seconds", "executions_seconds"):
        value = getattr(policy, name)
        if not 0 <= value <= MAX_SECONDS:
            raise InvalidArgument.field(name.replace("_seconds", ""), "must be between 0 (keep) and 100 years")


@runtime_checkable
class PartitionedEvents(Protocol):
    """A store whose events are kept in time partitions (PostgreSQL)."""

    async def maintain_event_partitions(self, tenant: str, now: datetime, before: datetime | None) -> int:
        """Create the coming partitions and, with ``before``, drop those wholly older; the
        number of events dropped."""
        ...


class RetentionKeeper:
    def __init__(
        self,
        store: Store,
        tenants: Callable[[], Awaitable[list[str]]],
        interval_seconds: float = INTERVAL_SECONDS,
        batch: int = BATCH,
        also: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        #: other per-tenant upkeep run in the same sweep
        self._also = also
        self._tenants = tenants
        self._interval = interval_seconds
        self._batch = batch

    async def apply(self, tenant: str, now: datetime | None = None) -> Removed:
        """Delete what ``tenant``'s policy no longer keeps, batch after batch."""
        policy = await self._store.get_retention(tenant)
        now = now or utcnow()
        removed = Removed()
        events_before = now - timedelta(seconds=policy.events_seconds) if policy.events_seconds else None
        if isinstance(self._store, PartitionedEvents):
            removed.events += await self._store.maintain_event_partitions(tenant, now, events_before)
        if events_before is not None:
            before = events_before
            while (n := await self._store.delete_events_before(tenant, before, self._batch)) > 0:
                removed.events += n
                if n < self._batch:
                    break
                await asyncio.sleep(0)  # writers go between batches
        if policy.executions_seconds:
            before = now - timedelta(seconds=policy.executions_seconds)
            while (n := await self._store.delete_executions_before(tenant, before, self._batch)) > 0:
                removed.executions += n
                if n < self._batch:
                    break
                await asyncio.sleep(0)
        return removed

    async def run(self) -> None:
        while True:
            try:
                for tenant in await self._tenants():
                    if self._also is not None:
                        await self._also(tenant)
                    removed = await self.apply(tenant)
                    if removed.events or removed.executions:
                        log.info(
                            "retention removed %d events and %d executions of tenant %s",
                            removed.events,
                            removed.executions,
                            tenant,
                        )
            except NeoActionsError as exc:
                log.warning("retention failed: %s", exc)
            await asyncio.sleep(self._interval)


__all__ = ["BATCH", "PartitionedEvents", "Removed", "RetentionKeeper", "check_policy"]
