"""Workflow step rows of :class:`~neoactions.server.persistence.memory.MemoryStore`
(``WorkflowStore``), kept as the rows the embedded store writes (as :mod:`.sql_workflows`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neoactions.server.persistence.memory_tables import DIALECT, Tables
from neoactions.server.persistence.sql_workflows import step_from_row, step_params
from neoactions.server.workflows.rows import StepRun, StepStatus


def _steps(t: Tables) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    return t.workflows.setdefault("steps", {})  # type: ignore[no-any-return]


def _paused(t: Tables) -> dict[str, bool]:
    return t.workflows.setdefault("paused", {})  # type: ignore[no-any-return]


class MemoryWorkflows:
    """``WorkflowStore`` over the tables of the concrete in-memory store."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def workflow_steps(self, tenant: str, run_id: str) -> list[StepRun]:
        rows = _steps(await self._tables(tenant))
        found = sorted((k, r) for k, r in rows.items() if k[0] == run_id)
        return [step_from_row(r, DIALECT) for _, r in found]

    async def save_workflow_steps(self, tenant: str, steps: Sequence[StepRun]) -> None:
        rows = _steps(await self._tables(tenant))
        for s in steps:
            rows[(s.run_id, s.step, s.index)] = step_params(s, DIALECT)

    async def settle_workflow_step(self, tenant: str, step: StepRun, expected: StepStatus) -> bool:
        rows = _steps(await self._tables(tenant))
        key = (step.run_id, step.step, step.index)
        current = rows.get(key)
        if current is None or current[3] != expected.value:
            return False
        rows[key] = step_params(step, DIALECT)
        return True

    async def workflow_event_waits(self, tenant: str) -> list[StepRun]:
        rows = _steps(await self._tables(tenant))
        return [step_from_row(r, DIALECT) for _, r in sorted(rows.items()) if r[3] == "waiting" and r[11] is not None]

    async def set_workflow_paused(self, tenant: str, run_id: str, paused: bool) -> None:
        _paused(await self._tables(tenant))[run_id] = paused

    async def workflow_paused(self, tenant: str, run_id: str) -> bool:
        return _paused(await self._tables(tenant)).get(run_id, False)


__all__ = ["MemoryWorkflows"]
