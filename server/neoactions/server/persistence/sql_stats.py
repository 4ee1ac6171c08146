"""Action stats in the SQL stores (``StatsStore``): the executions that ended in a time window.

One indexed range read of ``executions`` by ``finished_at`` (newest first, capped): the
counts, rates and percentiles are computed from these samples by
:mod:`neoactions.server.telemetry.stats`, the same way for every store.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from neoactions.domain.model import FINAL_STATUSES, ExecutionStatus
from neoactions.server.persistence.codec import Dialect, Row, as_utc, error_from_json
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import STATS_MAX_SAMPLES, ExecutionSample

if TYPE_CHECKING:
    from neoactions.server.persistence.sqlstore import Tx

#: what a sample reads of an execution
SAMPLE_COLUMNS = ("action_name", "status", "started_at", "finished_at", "error")
_FINAL = ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATUSES))


def sample_from_row(row: Row, d: Dialect) -> ExecutionSample:
    started = d.dec_opt_time(row[2])
    finished = d.dec_time(row[3])
    duration = max(0.0, (finished - started).total_seconds()) if started is not None else None
    return ExecutionSample(
        action_name=row[0],
        status=ExecutionStatus(row[1]),
        finished_at=finished,
        duration_seconds=duration,
        error=error_from_json(d.dec_json(row[4])),
    )


def samples_query(
    prefix: str, d: Dialect, since: datetime, until: datetime, action_name: str, limit: int
) -> tuple[str, list[Any]]:
    params: list[Any] = [d.enc_time(as_utc(since)), d.enc_time(as_utc(until))]
    where = f"finished_at >= $1 AND finished_at < $2 AND status IN ({_FINAL})"
    if action_name:
        params.append(action_name)
        where += f" AND action_name = ${len(params)}"
    params.append(limit)
    columns = ", ".join(SAMPLE_COLUMNS)
    sql = f"SELECT {columns} FROM {prefix}executions WHERE {where} ORDER BY finished_at DESC LIMIT ${len(params)}"
    return sql, params


class SqlStatsMixin:
    """``StatsStore`` over the transaction of the concrete SQL store."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        raise NotImplementedError

    async def execution_samples(
        self,
        tenant: str,
        since: datetime,
        until: datetime,
        action_name: str = "",
        limit: int = STATS_MAX_SAMPLES,
    ) -> list[ExecutionSample]:
        async with self._tx(tenant, write=False) as (tx, q):
            sql, params = samples_query(q.prefix, self.dialect, since, until, action_name, max(1, limit))
            rows = await tx.fetch(sql, *params)
        return [sample_from_row(r, self.dialect) for r in rows]


__all__ = ["SAMPLE_COLUMNS", "SqlStatsMixin", "sample_from_row", "samples_query"]
