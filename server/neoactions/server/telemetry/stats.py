"""Action stats: counts, success rate, duration percentiles, throughput and the last error of
the executions that ended in a time window, computed from stored executions (``StatsStore``).

Pure functions over samples, plus :class:`StatsReader`, which reads them from the store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import ExecutionError, ExecutionStatus, utcnow
from neoactions.server.store import STATS_MAX_SAMPLES, ExecutionSample, StatsStore

#: the window when a request names none
DEFAULT_WINDOW = timedelta(hours=1)
#: statuses that count as failures (cancelled executions are neither success nor failure)
FAILURES = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.DEAD_LETTERED})


@dataclass(frozen=True, slots=True)
class ActionStats:
    """What the executions of one action (``""``: every action of the tenant) that ended in
    ``[start, end)`` add up to."""

    action: str
    start: datetime
    end: datetime
    count: int = 0
    succeeded: int = 0
    #: failed, timed out or dead-lettered
    failed: int = 0
    cancelled: int = 0
    dead_lettered: int = 0
    #: ``succeeded / (succeeded + failed)``; 0 when none of them ended
    success_rate: float = 0.0
    avg_seconds: float = 0.0
    p50_seconds: float = 0.0
    p95_seconds: float = 0.0
    p99_seconds: float = 0.0
    #: executions ended per second over the window
    throughput: float = 0.0
    last_error: ExecutionError | None = None
    last_error_at: datetime | None = None
    #: more executions ended than one query reads: the figures are over the newest ones
    truncated: bool = False

    @property
    def judged(self) -> int:
        """Executions that ended in success or failure (the base of the rates)."""
        return self.succeeded + self.failed

    @property
    def error_rate(self) -> float:
        return self.failed / self.judged if self.judged else 0.0


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ascending ``ordered`` (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def compute(
    action: str, samples: Sequence[ExecutionSample], start: datetime, end: datetime, truncated: bool = False
) -> ActionStats:
    """The stats of ``samples`` (newest first, as the store returns them)."""
    succeeded = sum(1 for s in samples if s.status is ExecutionStatus.SUCCEEDED)
    failed = sum(1 for s in samples if s.status in FAILURES)
    durations = sorted(s.duration_seconds for s in samples if s.duration_seconds is not None)
    last = next((s for s in samples if s.status in FAILURES and s.error is not None), None)
    seconds = max((end - start).total_seconds(), 1e-9)
    return ActionStats(
        action=action,
        start=start,
        end=end,
        count=len(samples),
        succeeded=succeeded,
        failed=failed,
        cancelled=sum(1 for s in samples if s.status is ExecutionStatus.CANCELLED),
        dead_lettered=sum(1 for s in samples if s.status is ExecutionStatus.DEAD_LETTERED),
        success_rate=succeeded / (succeeded + failed) if succeeded + failed else 0.0,
        avg_seconds=sum(durations) / len(durations) if durations else 0.0,
        p50_seconds=percentile(durations, 50),
        p95_seconds=percentile(durations, 95),
        p99_seconds=percentile(durations, 99),
        throughput=len(samples) / seconds,
        last_error=last.error if last is not None else None,
        last_error_at=last.finished_at if last is not None else None,
        truncated=truncated,
    )


def window(
    start: datetime | None, end: datetime | None, default: timedelta = DEFAULT_WINDOW
) -> tuple[datetime, datetime]:
    """``[start, end)``: ``end`` defaults to now, ``start`` to ``default`` before it."""
    end = end or utcnow()
    start = start or end - default
    if start >= end:
        raise InvalidArgument.field("start_time", "must be before end_time")
    return start, end


class StatsReader:
    """Reads samples from the store and adds them up."""

    def __init__(self, store: StatsStore, max_samples: int = STATS_MAX_SAMPLES) -> None:
        self._store = store
        self._max = max_samples

    async def samples(
        self, tenant: str, start: datetime, end: datetime, action: str = ""
    ) -> tuple[list[ExecutionSample], bool]:
        samples = await self._store.execution_samples(tenant, start, end, action, self._max + 1)
        return samples[: self._max], len(samples) > self._max

    async def action_stats(self, tenant: str, action: str, start: datetime, end: datetime) -> ActionStats:
        samples, truncated = await self.samples(tenant, start, end, action)
        return compute(action, samples, start, end, truncated)

    async def overview(self, tenant: str, start: datetime, end: datetime) -> tuple[ActionStats, list[ActionStats]]:
        """The tenant's total and each action's stats (those with executions in the window),
        busiest first."""
        samples, truncated = await self.samples(tenant, start, end)
        by_action: dict[str, list[ExecutionSample]] = {}
        for s in samples:
            by_action.setdefault(s.action_name, []).append(s)
        actions = [compute(name, group, start, end, truncated) for name, group in by_action.items()]
        actions.sort(key=lambda a: (-a.count, a.action))
        return compute("", samples, start, end, truncated), actions


__all__ = ["DEFAULT_WINDOW", "FAILURES", "ActionStats", "StatsReader", "compute", "percentile", "window"]
