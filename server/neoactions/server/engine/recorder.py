"""Group commit of attempt starts and finishes.

Every attempt is written twice — when it starts (before the runner is called, so a
crash shows it was cut) and when it ends. One transaction per write costs one disk
flush each and caps a process at a few hundred attempts a second. The recorder
gathers the writes of all executions of a tenant: while one transaction commits, the
writes that arrive wait, and the next transaction takes all of them (up to
``max_batch``). A lone write commits at once, so batching adds no wait at low load;
under load, hundreds of attempts share one commit.

Each write is still fenced and refused on its own (``Store.record_attempts``); the
caller gets its own result or error, as with one transaction per write. A change is
durable when ``record`` returns, never before.
"""

from __future__ import annotations

import asyncio
import logging

from neoactions.domain.errors import Aborted
from neoactions.server.store import TRANSACTION_CONFLICT, AttemptChange, ExecutionStore

log = logging.getLogger(__name__)

#: tries of a transaction the database aborted to break a deadlock
_CONFLICT_TRIES = 3

_Waiting = tuple[AttemptChange, "asyncio.Future[None]"]


class AttemptRecorder:
    def __init__(self, store: ExecutionStore, max_batch: int = 512, committers: int = 2) -> None:
        self._store = store
        self._max_batch = max_batch
        self._committers = committers
        self._waiting: dict[str, list[_Waiting]] = {}
        self._committing: dict[str, set[asyncio.Task[None]]] = {}
        #: executions with a change in a transaction under way (their next change waits for it)
        self._in_flight: set[str] = set()

    async def record(self, tenant: str, change: AttemptChange) -> None:
        """Store ``change`` (shared with others' changes in one transaction); raises what refused it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, []).append((change, done))
        committing = self._committing.setdefault(tenant, set())
        if len(committing) < self._committers:
            committing.add(asyncio.create_task(self._commit(tenant), name=f"group-commit-{tenant}"))
        await done

    async def drain(self) -> None:
        """Wait until every change handed in so far is committed (or refused)."""
        while tasks := [t for committing in self._committing.values() for t in committing]:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _take(self, tenant: str) -> list[_Waiting]:
        """The next batch: up to ``max_batch`` changes, each of a different execution, in order."""
        waiting = self._waiting.get(tenant, [])
        batch: list[_Waiting] = []
        seen: set[str] = set()
        taken = 0
        while taken < len(waiting) and len(batch) < self._max_batch:
            change, done = waiting[taken]
            if not done.cancelled():  # a cancelled caller left before its change was written: drop it
                if change.execution_id in seen or change.execution_id in self._in_flight:
                    break
                seen.add(change.execution_id)
                batch.append((change, done))
            taken += 1
        left = waiting[taken:]
        if left:
            self._waiting[tenant] = left
        else:
            self._waiting.pop(tenant, None)
        return batch

    async def _commit(self, tenant: str) -> None:
        me = asyncio.current_task()
        try:
            while batch := self._take(tenant):
                ids = [change.execution_id for change, _ in batch]
                self._in_flight.update(ids)
                try:
                    await self._write(tenant, batch)
                finally:
                    self._in_flight.difference_update(ids)
        finally:
            # leave the set in the same step that found nothing waiting: a change handed in
            # after this starts a committer of its own
            committing = self._committing.get(tenant, set())
            committing.discard(me)
            if not committing:
                self._committing.pop(tenant, None)

    async def _write(self, tenant: str, batch: list[_Waiting]) -> None:
        changes = [change for change, _ in batch]
        try:
            for tries_left in range(_CONFLICT_TRIES - 1, -1, -1):
                try:
                    refusals = await self._store.record_attempts(tenant, changes)
                    break
                except Aborted as exc:
                    # the database aborted the whole transaction to break a deadlock: try again
                    if exc.reason != TRANSACTION_CONFLICT or not tries_left:
                        raise
                    log.info("group commit of %d changes tried again: %s", len(changes), exc.message)
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), refused in zip(batch, refusals, strict=True):
            if done.done():
                continue
            if refused is None:
                done.set_result(None)
            else:
                done.set_exception(refused)


__all__ = ["AttemptRecorder"]
