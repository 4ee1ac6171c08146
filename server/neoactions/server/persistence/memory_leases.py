"""Leases, the queued-mode outbox, cancel and requeue: the scheduling half of ``MemoryStore``
(as :mod:`.leases` is of ``SqlStore``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from neoactions.domain.errors import FailedPrecondition
from neoactions.domain.model import Execution, ExecutionError, ExecutionMode, ExecutionStatus, utcnow
from neoactions.server.persistence.codec import ATTEMPT_COLUMNS, error_json, lookup_id, to_micros
from neoactions.server.persistence.leases import _not_waiting
from neoactions.server.persistence.memory_tables import (
    DIALECT,
    RETRYABLE,
    UNFINISHED,
    Row,
    Tables,
    claim_order,
    drop_lease,
    execution_test,
    is_due,
    owned_by,
    requeue,
    well_formed_ids,
)
from neoactions.server.persistence.sqlstore import _execution_not_found
from neoactions.server.store import ExecutionFilter, ExecutionState


class MemoryLeases:
    """Store methods of the scheduling roles over the tables of the concrete store."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def _stored(self, tenant: str, execution_id: str) -> tuple[Tables, Row]:
        """The tables of ``tenant`` and the row of ``execution_id``, or ``NotFound``."""
        key = lookup_id(execution_id)
        t = await self._tables(tenant)
        row = t.executions.get(key) if key is not None else None
        if row is None:
            raise _execution_not_found(tenant, execution_id)
        return t, row

    # --- cancel and requeue -------------------------------------------------------------

    async def cancel_execution(self, tenant: str, execution_id: str, error: ExecutionError) -> Execution:
        t, row = await self._stored(tenant, execution_id)
        if row["status"] not in UNFINISHED:
            raise FailedPrecondition(
                f"execution {execution_id!r} already ended ({row['status']})",
                reason="EXECUTION_FINISHED",
                metadata={"execution_id": execution_id, "status": str(row["status"])},
            )
        now = to_micros(utcnow())
        why = DIALECT.enc_json(error_json(error))
        row.update(status="cancelled", error=why, error_type="cancelled", finished_at=now, updated_at=now)
        row["next_attempt_at"] = None
        drop_lease(row)
        attempts = t.attempts.get(row["id"], {})
        for number, a in list(attempts.items()):
            if a[3] == "running":
                cancelled = dict(zip(ATTEMPT_COLUMNS, a, strict=True))
                cancelled.update(status="cancelled", finished_at=now, error=why)
                attempts[number] = tuple(cancelled[c] for c in ATTEMPT_COLUMNS)
        if row["event_id"] is not None:
            t.settle([row["event_id"]])
        return t.execution(tenant, row)

    async def wake_execution(
        self, tenant: str, execution_id: str, at: datetime, owner: str = "", until: datetime | None = None
    ) -> Execution:
        t, row = await self._stored(tenant, execution_id)
        if row["status"] != "waiting":
            raise _not_waiting(execution_id, str(row["status"]))
        now = DIALECT.enc_time(at)
        row.update(next_attempt_at=now, updated_at=now)
        expires = row["lease_expires_at"]
        if owner and row["mode"] != ExecutionMode.QUEUED.value and (expires is None or expires <= now):
            row["lease_owner"], row["lease_expires_at"] = owner, DIALECT.opt_time(until)
        return t.execution(tenant, row)

    async def requeue_execution(self, tenant: str, execution_id: str) -> Execution:
        t, row = await self._stored(tenant, execution_id)
        if row["status"] not in RETRYABLE:
            raise FailedPrecondition(
                f"execution {execution_id!r} is {row['status']}: only failed, timed-out, cancelled or"
                " dead-lettered executions can be retried",
                reason="EXECUTION_NOT_RETRYABLE",
                metadata={"execution_id": execution_id, "status": str(row["status"])},
            )
        requeue(row, to_micros(utcnow()))
        if row["event_id"] is not None:
            t.reopen([row["event_id"]])
        return t.execution(tenant, row)

    async def requeue_dead_letters(self, tenant: str, filter: ExecutionFilter) -> list[Execution]:
        t = await self._tables(tenant)
        test = execution_test(filter)
        rows = sorted(
            (r for r in t.executions.values() if r["status"] == "dead_lettered" and test(r)),
            key=lambda r: (r["created_at"], r["id"]),
        )
        now = to_micros(utcnow())
        for row in rows:
            requeue(row, now)
        t.reopen(sorted({r["event_id"] for r in rows if r["event_id"] is not None}))
        return [t.execution(tenant, r, attempts=False) for r in rows]

    # --- leases ----------------------------------------------------------------------------

    def _lease(self, t: Tables, tenant: str, rows: list[Row], owner: str, until: datetime) -> list[Execution]:
        expires = DIALECT.enc_time(until)
        for row in rows:
            row["lease_owner"], row["lease_expires_at"] = owner or None, expires
        return [t.execution(tenant, r) for r in sorted(rows, key=claim_order)]

    async def claim_due(self, tenant: str, owner: str, until: datetime, limit: int) -> list[Execution]:
        if limit <= 0:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        due = [
            r
            for r in t.executions.values()
            if r["status"] in UNFINISHED and r["mode"] != ExecutionMode.QUEUED.value and is_due(r, now)
        ]
        return self._lease(t, tenant, sorted(due, key=claim_order)[:limit], owner, until)

    async def claim(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        keys = well_formed_ids(execution_ids)
        if not keys:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        rows = [t.executions[k] for k in keys if k in t.executions]
        due = [r for r in rows if r["status"] in UNFINISHED and is_due(r, now)]
        return self._lease(t, tenant, due, owner, until)

    async def execution_states(self, tenant: str, execution_ids: Sequence[str]) -> dict[str, ExecutionState]:
        keys = well_formed_ids(execution_ids)
        if not keys:
            return {}
        t = await self._tables(tenant)
        rows = [t.executions[k] for k in keys if k in t.executions]
        return {
            r["id"]: ExecutionState(
                r["id"],
                ExecutionStatus(r["status"]),
                r["lease_owner"] or "",
                DIALECT.dec_opt_time(r["lease_expires_at"]),
                DIALECT.dec_opt_time(r["next_attempt_at"]),
            )
            for r in rows
        }

    async def extend_leases(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        keys = well_formed_ids(execution_ids)
        if not keys:
            return set()
        t = await self._tables(tenant)
        held = [
            t.executions[k]
            for k in keys
            if k in t.executions and owned_by(t.executions[k], owner) and t.executions[k]["status"] in UNFINISHED
        ]
        for row in held:
            row["lease_expires_at"] = DIALECT.enc_time(until)
        return {r["id"] for r in held}

    async def defer_execution(self, tenant: str, execution_id: str, until: datetime, owner: str) -> bool:
        key = lookup_id(execution_id)
        if key is None:
            return False
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None or row["status"] not in UNFINISHED or not owned_by(row, owner):
            return False
        row.update(next_attempt_at=DIALECT.enc_time(until), updated_at=to_micros(utcnow()))
        if row["status"] == "running":
            row["status"] = "scheduled"
        drop_lease(row)
        return True

    async def release_leases(self, tenant: str, owner: str) -> int:
        t = await self._tables(tenant)
        held = [r for r in t.executions.values() if owned_by(r, owner) and r["status"] in UNFINISHED]
        for row in held:
            drop_lease(row)
        return len(held)

    # --- the outbox -------------------------------------------------------------------------

    async def take_for_queue(
        self, tenant: str, limit: int, stale_before: datetime, settle_before: datetime
    ) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        stale, settle = to_micros(stale_before), to_micros(settle_before)
        due = [
            r
            for r in t.executions.values()
            if r["status"] in UNFINISHED
            and r["mode"] == ExecutionMode.QUEUED.value
            and is_due(r, now)
            and (r["queued_at"] is None or r["queued_at"] < stale)
            and (r["status"] != "pending" or r["updated_at"] < settle)
        ]
        taken = sorted(due, key=claim_order)[:limit]
        for row in taken:
            row["queued_at"] = now
        return [(r["id"], int(r["priority"])) for r in taken]

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        keys = well_formed_ids(execution_ids)
        if not keys:
            return
        t = await self._tables(tenant)
        for key in keys:
            row = t.executions.get(key)
            if row is not None and row["status"] == "pending" and row["queued_at"] is None:
                row["queued_at"] = DIALECT.enc_time(at)

    async def unmark_queued(self, tenant: str, execution_ids: Sequence[str]) -> None:
        keys = well_formed_ids(execution_ids)
        if not keys:
            return
        t = await self._tables(tenant)
        for key in keys:
            row = t.executions.get(key)
            if row is not None and row["status"] in UNFINISHED:
                row["queued_at"] = None

    async def reset_queued(self, tenant: str) -> int:
        t = await self._tables(tenant)
        marked = [
            r
            for r in t.executions.values()
            if r["mode"] == ExecutionMode.QUEUED.value and r["status"] in UNFINISHED and r["queued_at"] is not None
        ]
        for row in marked:
            row["queued_at"] = None
        return len(marked)


__all__ = ["MemoryLeases"]
