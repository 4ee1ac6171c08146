"""``start_attempt`` and ``finish_attempt``: one attempt change through ``record_attempts``,
the same for every store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from neoactions.domain.model import JSON, Attempt, ExecutionError, ExecutionStatus
from neoactions.server.store import AttemptChange, AttemptFinish, AttemptStart


class AttemptShortcuts:
    """Single-change forms of ``record_attempts`` (which a store provides)."""

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        raise NotImplementedError

    async def start_attempt(self, tenant: str, execution_id: str, attempt: Attempt, owner: str = "") -> None:
        (error,) = await self.record_attempts(tenant, [AttemptStart(execution_id, attempt, owner)])
        if error is not None:
            raise error

    async def finish_attempt(
        self,
        tenant: str,
        execution_id: str,
        attempt: Attempt,
        status: ExecutionStatus,
        output: JSON = None,
        error: ExecutionError | None = None,
        next_attempt_at: datetime | None = None,
        owner: str = "",
        keep_lease: bool = False,
    ) -> None:
        change = AttemptFinish(execution_id, attempt, status, output, error, next_attempt_at, owner, keep_lease)
        (refused,) = await self.record_attempts(tenant, [change])
        if refused is not None:
            raise refused


__all__ = ["AttemptShortcuts"]
