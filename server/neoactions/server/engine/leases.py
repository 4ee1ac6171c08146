"""The leases this process holds, kept alive by a heartbeat and given up on shutdown.

An execution runs only while its lease is live in the store. The heartbeat extends
every held lease in one statement per tenant; a lease the store no longer confirms
(cancelled, or taken over after this process stalled past its expiry) is reported
lost and its attempt stopped — its outcome could not be recorded
anyway, because ``start_attempt``/``finish_attempt`` are fenced by the owner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import utcnow
from neoactions.server.engine.jobs import Job
from neoactions.server.store import LeaseStore

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A lease owner name unique to this process (readable in the store: host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    def __init__(self, store: LeaseStore, owner: str, ttl_seconds: float) -> None:
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_seconds)
        self._store = store
        self._held: dict[tuple[str, str], Job] = {}

    def until(self) -> datetime:
        """The expiry of a lease taken or extended now."""
        return utcnow() + self.ttl

    def hold(self, job: Job) -> None:
        ex = job.execution
        self._held[(ex.tenant, ex.id)] = job

    def drop(self, job: Job) -> None:
        ex = job.execution
        if self._held.get((ex.tenant, ex.id)) is job:
            del self._held[(ex.tenant, ex.id)]

    def holds(self, tenant: str, execution_id: str) -> Job | None:
        return self._held.get((tenant, execution_id))

    def held(self) -> list[Job]:
        """The jobs whose leases this process holds now."""
        return list(self._held.values())

    @property
    def count(self) -> int:
        return len(self._held)

    async def run(self) -> None:
        """Beat every third of the lease time until cancelled."""
        interval = self.ttl.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.beat()
            except NeoActionsError as exc:
                # the store is unreachable: leases may expire and others take the work over,
                # which the fencing makes safe; keep beating
                log.warning("lease heartbeat failed: %s", exc)

    async def beat(self) -> None:
        by_tenant: dict[str, list[Job]] = {}
        for (tenant, _), job in list(self._held.items()):
            by_tenant.setdefault(tenant, []).append(job)
        until = self.until()
        for tenant, jobs in by_tenant.items():
            kept = await self._store.extend_leases(tenant, [j.execution.id for j in jobs], self.owner, until)
            for job in jobs:
                ex = job.execution
                # a job recording its outcome gave its lease up itself (or its write is fenced)
                if ex.id not in kept and self._held.get((tenant, ex.id)) is job and not job.settling:
                    log.info("lease on execution %s lost; stopping its attempt here", ex.id)
                    self.drop(job)
                    job.stop()

    async def release_all(self, tenants: Iterable[str]) -> int:
        """Give up every lease of this owner in ``tenants`` (graceful shutdown)."""
        released = 0
        for tenant in tenants:
            try:
                released += await self._store.release_leases(tenant, self.owner)
            except NeoActionsError as exc:
                log.warning("could not release leases of tenant %s (they will expire): %s", tenant, exc)
        self._held.clear()
        return released


__all__ = ["LeaseKeeper", "new_owner"]
