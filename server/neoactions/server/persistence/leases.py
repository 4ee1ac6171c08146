"""Leases, the queued-mode outbox, cancel and requeue: the scheduling half of ``SqlStore``.

A process owns an unfinished execution while its lease (``lease_owner`` until
``lease_expires_at``) is live; anything due and unleased — or whose lease expired
because its owner died — is claimable by any process with one batched statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers, so a claim is
simply one write transaction). Every statement here touches many rows in one round
trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from neoactions.domain.errors import FailedPrecondition, NotFound
from neoactions.domain.model import Execution, ExecutionError, ExecutionStatus, utcnow
from neoactions.server.persistence.codec import (
    Dialect,
    Row,
    attempt_from_row,
    dec_id,
    error_json,
    execution_from_row,
    lookup_id,
)
from neoactions.server.persistence.filters import dead_letters_requeue
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import ExecutionFilter, ExecutionState

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx


def _ids(execution_ids: Sequence[str]) -> list[str]:
    """The well-formed ids among ``execution_ids`` (a malformed one cannot name anything)."""
    return [k for k in (lookup_id(i) for i in execution_ids) if k is not None]


def _not_waiting(execution_id: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"execution {execution_id!r} is {status}, not waiting: there is nothing to wake",
        reason="EXECUTION_NOT_WAITING",
        metadata={"execution_id": execution_id, "status": status},
    )


class LeaseMixin:
    """Store methods of the scheduling port, over the transaction of the concrete store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    def _one(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    async def _settle_event(self, tx: Tx, q: Statements, event_id: str) -> None:
        raise NotImplementedError

    # --- claims and leases ----------------------------------------------------------

    async def _with_attempts(self, tx: Tx, q: Statements, tenant: str, rows: Sequence[Row]) -> list[Execution]:
        d = self.dialect
        executions = [execution_from_row(r, tenant, d) for r in rows]
        # fresh work has no attempts: only retries and recovered executions need the second read
        again = [x.id for x in executions if x.attempt_count > 0]
        if again:
            by_id = {x.id: x for x in executions}
            for a in await tx.fetch(q.attempts_of_ids, d.enc_ids(again)):
                by_id[dec_id(a[0])].attempts.append(attempt_from_row(a, d))
        executions.sort(key=lambda x: (-int(x.priority), x.created_at, x.id))
        return executions

    async def claim_due(self, tenant: str, owner: str, until: datetime, limit: int) -> list[Execution]:
        if limit <= 0:
            return []
        d = self.dialect
        # one UPDATE, atomic by itself; the attempts read after it sees rows now leased to us
        async with self._one(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.execution_claim_due, owner, d.enc_time(until), d.enc_time(utcnow()), limit)
            return await self._with_attempts(tx, q, tenant, rows)

    async def claim(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        keys = _ids(execution_ids)
        if not keys:
            return []
        d = self.dialect
        async with self._one(tenant, write=True) as (tx, q):  # as in claim_due
            rows = await tx.fetch(
                q.execution_claim_ids, owner, d.enc_time(until), d.enc_time(utcnow()), d.enc_ids(keys)
            )
            return await self._with_attempts(tx, q, tenant, rows)

    async def execution_states(self, tenant: str, execution_ids: Sequence[str]) -> dict[str, ExecutionState]:
        keys = _ids(execution_ids)
        if not keys:
            return {}
        d = self.dialect
        async with self._one(tenant, write=False) as (tx, q):
            rows = await tx.fetch(q.execution_states, d.enc_ids(keys))
        return {
            dec_id(r[0]): ExecutionState(
                dec_id(r[0]), ExecutionStatus(r[1]), r[2] or "", d.dec_opt_time(r[3]), d.dec_opt_time(r[4])
            )
            for r in rows
        }

    async def extend_leases(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        keys = _ids(execution_ids)
        if not keys:
            return set()
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.lease_extend, d.enc_ids(keys), owner, d.enc_time(until))
        return {dec_id(r[0]) for r in rows}

    async def defer_execution(self, tenant: str, execution_id: str, until: datetime, owner: str) -> bool:
        key = lookup_id(execution_id)
        if key is None:
            return False
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(q.execution_defer, key, d.enc_time(until), d.enc_time(utcnow()), owner)
        return row is not None

    async def release_leases(self, tenant: str, owner: str) -> int:
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.lease_release, owner)
        return len(rows)

    # --- the outbox -----------------------------------------------------------------------

    async def take_for_queue(
        self, tenant: str, limit: int, stale_before: datetime, settle_before: datetime
    ) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(
                q.outbox_take, d.enc_time(utcnow()), d.enc_time(stale_before), d.enc_time(settle_before), limit
            )
        return [(dec_id(r[0]), int(r[1])) for r in rows]

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        keys = _ids(execution_ids)
        if keys:
            async with self._one(tenant, write=True) as (tx, q):
                await tx.execute(q.outbox_mark, self.dialect.enc_ids(keys), self.dialect.enc_time(at))

    async def unmark_queued(self, tenant: str, execution_ids: Sequence[str]) -> None:
        keys = _ids(execution_ids)
        if keys:
            async with self._one(tenant, write=True) as (tx, q):
                await tx.execute(q.outbox_unmark, self.dialect.enc_ids(keys))

    async def reset_queued(self, tenant: str) -> int:
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.outbox_reset)
        return len(rows)

    # --- cancel and requeue ------------------------------------------------------------------

    async def _load(self, tx: Tx, q: Statements, tenant: str, key: str) -> Execution:
        row = await tx.fetchrow(q.execution_get, key)
        assert row is not None  # just updated in this transaction
        execution = execution_from_row(row, tenant, self.dialect)
        execution.attempts = [attempt_from_row(a, self.dialect) for a in await tx.fetch(q.attempts_of, key)]
        return execution

    async def cancel_execution(self, tenant: str, execution_id: str, error: ExecutionError) -> Execution:
        d = self.dialect
        key = lookup_id(execution_id)
        if key is None:
            raise _not_found(tenant, execution_id)
        now = d.enc_time(utcnow())
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(q.execution_cancel, key, d.enc_json(error_json(error)), now)
            if row is None:
                state = await tx.fetchrow(q.execution_state, key)
                if state is None:
                    raise _not_found(tenant, execution_id)
                raise FailedPrecondition(
                    f"execution {execution_id!r} already ended ({state[0]})",
                    reason="EXECUTION_FINISHED",
                    metadata={"execution_id": execution_id, "status": str(state[0])},
                )
            await tx.execute(q.attempt_cancel, key, now, d.enc_json(error_json(error)))
            if row[0] is not None:
                await self._settle_event(tx, q, dec_id(row[0]))
            return await self._load(tx, q, tenant, key)

    async def wake_execution(
        self, tenant: str, execution_id: str, at: datetime, owner: str = "", until: datetime | None = None
    ) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _not_found(tenant, execution_id)
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            woken = await tx.fetchrow(q.execution_wake, key, d.enc_time(at), owner, d.opt_time(until))
            if woken is None:
                state = await tx.fetchrow(q.execution_state, key)
                if state is None:
                    raise _not_found(tenant, execution_id)
                raise _not_waiting(execution_id, str(state[0]))
            return await self._load(tx, q, tenant, key)

    async def requeue_execution(self, tenant: str, execution_id: str) -> Execution:
        d = self.dialect
        key = lookup_id(execution_id)
        if key is None:
            raise _not_found(tenant, execution_id)
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(q.execution_requeue, key, d.enc_time(utcnow()))
            if row is None:
                state = await tx.fetchrow(q.execution_state, key)
                if state is None:
                    raise _not_found(tenant, execution_id)
                raise FailedPrecondition(
                    f"execution {execution_id!r} is {state[0]}: only failed, timed-out, cancelled or"
                    " dead-lettered executions can be retried",
                    reason="EXECUTION_NOT_RETRYABLE",
                    metadata={"execution_id": execution_id, "status": str(state[0])},
                )
            if row[0] is not None:
                await tx.execute(q.events_reopen, d.enc_ids([dec_id(row[0])]))
            return await self._load(tx, q, tenant, key)

    async def requeue_dead_letters(self, tenant: str, filter: ExecutionFilter) -> list[Execution]:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            sql, params = dead_letters_requeue(q.prefix, d, filter, utcnow())
            rows = await tx.fetch(sql, *params)
            requeued = [execution_from_row(r, tenant, d) for r in rows]
            events = sorted({x.event_id for x in requeued if x.event_id})
            if events:
                await tx.execute(q.events_reopen, d.enc_ids(events))
        return requeued


def _not_found(tenant: str, execution_id: str) -> NotFound:
    return NotFound(
        f"execution {execution_id!r} not found",
        reason="EXECUTION_NOT_FOUND",
        metadata={"tenant": tenant, "execution_id": execution_id},
    )


__all__ = ["LeaseMixin"]
