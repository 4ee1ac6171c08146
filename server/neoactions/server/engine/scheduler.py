"""Claims due work from the store for this process: pending ``sync``/``async`` executions,
retries whose time came, and executions whose owner died (expired leases).

The store is the truth and the claim is one batched statement per tenant, so any
number of processes share the work without double-running it. Timers only wake the
loop early (a retry this process stored, a publish it accepted); without them the
poll interval bounds the delay. Tenants are served round-robin with an even share of
the free slots each, so one tenant's backlog does not starve another's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from neoactions.domain.errors import NeoActionsError
from neoactions.server.engine.dispatcher import Dispatcher
from neoactions.server.engine.jobs import Job
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.engine.wakeup import Wakeup
from neoactions.server.queue import fair_share
from neoactions.server.store import LeaseStore

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        store: LeaseStore,
        dispatcher: Dispatcher,
        leases: LeaseKeeper,
        tenants: Callable[[], Awaitable[list[str]]],
        poll_interval: float = 0.5,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._leases = leases
        self._tenants = tenants
        self._poll = poll_interval
        self._rotation = 0
        #: set when work may be due before the next poll
        self.wakeup = wakeup or Wakeup()

    async def run(self) -> None:
        try:
            while True:
                more = False
                if self._dispatcher.free_slots() > 0:
                    try:
                        more = await self.claim_round()
                    except NeoActionsError as exc:
                        log.warning("claiming due executions failed (retrying): %s", exc)
                if more and self._dispatcher.free_slots() > 0:
                    continue
                if more:
                    # backlog waits in the store; claim again as soon as a worker frees up
                    await self._dispatcher.slot_freed()
                    continue
                await self.wakeup.wait(self._poll)
        finally:
            self.wakeup.cancel()

    async def claim_round(self) -> bool:
        """Claim up to the free slots, round-robin over tenants; ``True`` when more may be due."""
        tenants = await self._tenants()
        if not tenants:
            return False
        self._rotation = (self._rotation + 1) % len(tenants)
        order = tenants[self._rotation :] + tenants[: self._rotation]
        free = self._dispatcher.free_slots()
        share = fair_share(free, len(order))
        more = False
        for tenant in order:
            want = min(share, free)
            if want <= 0:
                return True
            claimed = await self._store.claim_due(tenant, self._leases.owner, self._leases.until(), want)
            for ex in claimed:
                self._dispatcher.submit(Job(ex))
            free -= len(claimed)
            more = more or len(claimed) == want
        return more


__all__ = ["Scheduler"]
