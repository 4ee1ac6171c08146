"""What a workflow run stores per step, and the store role that keeps it (``WorkflowStore``).

Plain data; imported by the stores and by the workflow engine. A run's steps are rows
keyed by ``(run_id, step, index)``: ``index`` is ``-1`` for a step itself and ``0..n-1``
for the items a ``for_each`` step fans out to. A step row is written when the step
starts (with the id of the child execution it starts, before that child is stored) and
when it ends (with its output), so a run driven again after a crash finds every
completed step's result and never runs it again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from neoactions.domain.model import JSON, ExecutionError


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    #: waiting for a time, an event, or a retry's time
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: a wait_for_event whose timeout came first (dependents run; ``steps.x.timed_out``)
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.TIMED_OUT, StepStatus.CANCELLED}
)


@dataclass(slots=True)
class StepRun:
    """One step (or one ``for_each`` item) of one workflow run, as stored."""

    run_id: str
    step: str
    index: int = -1
    status: StepStatus = StepStatus.PENDING
    #: the child execution running it (a handler or action step); ``""``: none
    child_id: str = ""
    #: child executions started for it (a retry starts another)
    attempts: int = 0
    output: JSON = None
    error: ExecutionError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: when a waiting step is due (its timer, its event wait's timeout, its retry)
    wake_at: datetime | None = None
    #: a waiting wait_for_event: ``{"event_types": [...], "conditions": [...]}`` (rendered)
    wait: JSON = None

    @property
    def label(self) -> str:
        return self.step if self.index < 0 else f"{self.step}[{self.index}]"

    @property
    def key(self) -> tuple[str, int]:
        return (self.step, self.index)


class WorkflowStore(Protocol):
    """The steps of workflow runs, and whether a run is paused. Scoped to one tenant."""

    async def workflow_steps(self, tenant: str, run_id: str) -> list[StepRun]:
        """Every stored step row of ``run_id`` (none: ``[]``), by step then index."""

    async def save_workflow_steps(self, tenant: str, steps: Sequence[StepRun]) -> None:
        """Insert or replace these step rows, in one transaction."""

    async def settle_workflow_step(self, tenant: str, step: StepRun, expected: StepStatus) -> bool:
        """Replace the stored row of ``step`` only if its status is still ``expected`` (an event
        and a timeout racing for one wait: one wins). ``True`` when it was replaced."""

    async def workflow_event_waits(self, tenant: str) -> list[StepRun]:
        """Every step row waiting for an event (what the matcher's wait index is loaded from)."""

    async def set_workflow_paused(self, tenant: str, run_id: str, paused: bool) -> None:
        """Pause (no new steps start) or resume a run."""

    async def workflow_paused(self, tenant: str, run_id: str) -> bool:
        """Whether the run is paused."""


__all__ = ["StepRun", "StepStatus", "WorkflowStore"]
