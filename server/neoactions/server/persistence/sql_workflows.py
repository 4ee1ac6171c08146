"""Workflow step rows in the SQL stores (``WorkflowStore``): ``workflow_steps`` and
``workflow_runs``, one pair per tenant (migration 0006)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from neoactions.domain.model import ExecutionError, utcnow
from neoactions.server.persistence.codec import Dialect, Row
from neoactions.server.persistence.statements import Statements
from neoactions.server.workflows.rows import StepRun, StepStatus

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

STEP_COLUMNS = (
    "run_id", "step", "idx", "status", "child_id", "attempts", "output", "error",
    "started_at", "finished_at", "wake_at", "wait",
)  # fmt: skip
_SELECT = "SELECT " + ", ".join(STEP_COLUMNS) + " FROM {p}workflow_steps"
_UPSERT = (
    "INSERT INTO {p}workflow_steps (" + ", ".join(STEP_COLUMNS) + ") VALUES ("
    + ", ".join(f"${i}" for i in range(1, len(STEP_COLUMNS) + 1))
    + ") ON CONFLICT (run_id, step, idx) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in STEP_COLUMNS[3:])
)  # fmt: skip
_SETTLE = (
    "UPDATE {p}workflow_steps SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(STEP_COLUMNS[3:], start=4))
    + f" WHERE run_id = $1 AND step = $2 AND idx = $3 AND status = ${len(STEP_COLUMNS) + 1}"
    + " RETURNING idx"
)  # fmt: skip


def step_params(s: StepRun, d: Dialect) -> tuple[Any, ...]:
    return (
        s.run_id, s.step, s.index, s.status.value, s.child_id, s.attempts, d.enc_json(s.output),
        d.enc_json(None if s.error is None else s.error.to_dict()), d.opt_time(s.started_at),
        d.opt_time(s.finished_at), d.opt_time(s.wake_at), d.enc_json(s.wait),
    )  # fmt: skip


def step_from_row(row: Row, d: Dialect) -> StepRun:
    error = d.dec_json(row[7])
    return StepRun(
        run_id=row[0], step=row[1], index=row[2], status=StepStatus(row[3]), child_id=row[4], attempts=row[5],
        output=d.dec_json(row[6]), error=None if error is None else ExecutionError.from_dict(error),
        started_at=d.dec_opt_time(row[8]), finished_at=d.dec_opt_time(row[9]), wake_at=d.dec_opt_time(row[10]),
        wait=d.dec_json(row[11]),
    )  # fmt: skip


class SqlWorkflowsMixin:
    """``WorkflowStore`` over the transaction of the concrete SQL store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    async def workflow_steps(self, tenant: str, run_id: str) -> list[StepRun]:
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(_SELECT.format(p=q.prefix) + " WHERE run_id = $1 ORDER BY step, idx", run_id)
        return [step_from_row(r, self.dialect) for r in rows]

    async def save_workflow_steps(self, tenant: str, steps: Sequence[StepRun]) -> None:
        if not steps:
            return
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            await tx.executemany(_UPSERT.format(p=q.prefix), [step_params(s, d) for s in steps])

    async def settle_workflow_step(self, tenant: str, step: StepRun, expected: StepStatus) -> bool:
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(_SETTLE.format(p=q.prefix), *step_params(step, self.dialect), expected.value)
        return row is not None

    async def workflow_event_waits(self, tenant: str) -> list[StepRun]:
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(
                _SELECT.format(p=q.prefix) + " WHERE status = 'waiting' AND wait IS NOT NULL ORDER BY run_id"
            )
        return [step_from_row(r, self.dialect) for r in rows]

    async def set_workflow_paused(self, tenant: str, run_id: str, paused: bool) -> None:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            await tx.execute(
                f"INSERT INTO {q.prefix}workflow_runs (run_id, paused, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (run_id) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at",
                run_id,
                paused,
                d.enc_time(utcnow()),
            )

    async def workflow_paused(self, tenant: str, run_id: str) -> bool:
        async with self._tx(tenant, write=False) as (tx, q):
            row = await tx.fetchrow(f"SELECT paused FROM {q.prefix}workflow_runs WHERE run_id = $1", run_id)
        return bool(row[0]) if row is not None else False


__all__ = ["STEP_COLUMNS", "SqlWorkflowsMixin", "step_from_row", "step_params"]
