"""Action stats of :class:`~neoactions.server.persistence.memory.MemoryStore` (``StatsStore``),
read from the rows the embedded store writes (as :mod:`.sql_stats` is of ``SqlStore``)."""

from __future__ import annotations

from datetime import datetime

from neoactions.server.persistence.codec import as_utc, to_micros
from neoactions.server.persistence.memory_tables import DIALECT, FINAL, Tables
from neoactions.server.persistence.sql_stats import SAMPLE_COLUMNS, sample_from_row
from neoactions.server.store import STATS_MAX_SAMPLES, ExecutionSample


class MemoryStats:
    """``StatsStore`` over the tables of the concrete in-memory store."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def execution_samples(
        self,
        tenant: str,
        since: datetime,
        until: datetime,
        action_name: str = "",
        limit: int = STATS_MAX_SAMPLES,
    ) -> list[ExecutionSample]:
        low, high = to_micros(as_utc(since)), to_micros(as_utc(until))
        t = await self._tables(tenant)
        rows = [
            r
            for r in t.executions.values()
            if r["status"] in FINAL
            and r["finished_at"] is not None
            and low <= r["finished_at"] < high
            and (not action_name or r["action_name"] == action_name)
        ]
        rows.sort(key=lambda r: r["finished_at"], reverse=True)
        return [sample_from_row([r[c] for c in SAMPLE_COLUMNS], DIALECT) for r in rows[: max(1, limit)]]


__all__ = ["MemoryStats"]
