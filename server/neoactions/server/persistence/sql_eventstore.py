"""The event-archive role (:class:`~neoactions.server.eventstore.port.EventArchive`) of the SQL
stores: bulk reads of stored events, replays recorded once, replay jobs, retention and usage.

A mixin of :class:`~neoactions.server.persistence.sqlstore.SqlStore`, written over its ``_tx``
and dialect like the rest of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from neoactions.domain.model import FINAL_STATUSES, Execution, utcnow
from neoactions.server.eventstore.port import (
    Cursor,
    EventSelection,
    ReplayJobRecord,
    ReplayState,
    RetentionPolicy,
    StoreUsage,
    TableUsage,
    decode_cursor,
    encode_cursor,
    replay_not_found,
)
from neoactions.server.persistence.codec import (
    Dialect,
    Row,
    canonical_id,
    check_tenant,
    execution_params,
    from_micros,
    lookup_id,
    to_micros,
)
from neoactions.server.persistence.filters import parse_type_pattern
from neoactions.server.persistence.statements import Statements

#: what an envelope is built from, in this order
_SCAN_COLUMNS = (
    "id, type, source, subject, aggregate_type, aggregate_id, time, data, metadata, correlation_id, causation_id"
)
_FINAL = ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATUSES))
_JOB_COLUMNS = "id, state, spec, progress, created_at, updated_at, owner, lease_expires_at, resume_after"
_USAGE_TABLES = ("events", "executions", "attempts", "actions", "action_versions")


def _expired(now: str) -> str:
    """Running replay jobs whose lease ran out before the parameter ``now`` (or was given up)."""
    return f"state = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < {now})"


def selection_where(d: Dialect, s: EventSelection, after: Cursor | None) -> tuple[str, list[Any]]:
    """The WHERE clause (possibly empty) of ``s`` after ``after``, with its ``$n`` parameters."""
    clauses: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    pattern = parse_type_pattern(s.type_pattern)
    if pattern is not None and pattern.exact:
        clauses.append(f"type = {param(pattern.exact)}")
    elif pattern is not None:
        if pattern.prefix:
            clauses.append(f"type >= {param(pattern.prefix)} AND type < {param(pattern.prefix + '/')}")
        clauses.append(f"('.' || type) {d.regex_op} {param(pattern.regex)}")
    if s.correlation_id:
        clauses.append(f"correlation_id = {param(s.correlation_id)}")
    if s.source:
        clauses.append(f"source = {param(s.source)}")
    if s.status is not None:
        clauses.append(f"status = {param(s.status.value)}")
    if s.start_time is not None:
        clauses.append(f"time >= {param(d.enc_time(s.start_time))}")
    if s.end_time is not None:
        clauses.append(f"time < {param(d.enc_time(s.end_time))}")
    if s.event_ids:
        ids = [canonical_id(i, "filter.event_ids") for i in s.event_ids]
        clauses.append("id " + d.in_ids(param(d.enc_ids(ids))))
    if after is not None:
        t, i = param(d.enc_time(from_micros(after[0]))), param(canonical_id(after[1], "cursor"))
        clauses.append(f"(time, id) > ({t}, {i})")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def envelope_of(row: Row, tenant: str, d: Dialect, text_json: bool) -> dict[str, Any]:
    """``Event.envelope()`` of a scanned row, built without an ``Event`` in between."""
    data, metadata = row[7], row[8]
    if text_json:
        data, metadata = json.loads(data), json.loads(metadata)
    return {
        "id": str(row[0]),
        "type": row[1],
        "source": row[2],
        "subject": row[3],
        "aggregate_type": row[4],
        "aggregate_id": row[5],
        "time": d.dec_time(row[6]).isoformat(),
        "data": data,
        "metadata": metadata,
        "correlation_id": row[9],
        "causation_id": row[10],
        "tenant": tenant,
    }


class SqlEventArchive:
    """``EventArchive`` over a SQL store's transactions."""

    dialect: Dialect

    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Any, Statements]]:
        raise NotImplementedError

    async def scan_envelopes(
        self, tenant: str, selection: EventSelection, after: Cursor | None, limit: int
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        d = self.dialect
        where, params = selection_where(d, selection, after)
        async with self._tx(tenant, write=False) as (tx, q):
            sql = f"SELECT {_SCAN_COLUMNS} FROM {q.prefix}events{where} ORDER BY time, id LIMIT {int(limit)}"
            rows = await tx.fetch(sql, *params)
        if not rows:
            return [], None
        text_json = d.name == "sqlite"
        envelopes = [envelope_of(r, tenant, d, text_json) for r in rows]
        last = rows[-1]
        return envelopes, (to_micros(d.dec_time(last[6])), str(last[0]))

    async def append_replays(self, tenant: str, executions: Sequence[Execution]) -> list[Execution]:
        if not executions:
            return []
        d = self.dialect
        rows = []
        for x in executions:
            check_tenant(x.tenant, tenant, "execution.tenant")
            if not x.replay_of or not x.action_id:
                raise ValueError("a replayed execution needs replay_of and action_id")
            rows.append(execution_params(x, d))
        by_id = {canonical_id(x.id, "execution.id"): x for x in executions}
        async with self._tx(tenant, write=True) as (tx, q):
            # the unique (replay_of, action_id) index turns a replay already made into no row
            insert = q.execution_insert + " ON CONFLICT DO NOTHING"
            for row in rows:
                await tx.execute(insert, *row)
            found = await tx.fetch(
                f"SELECT id FROM {q.prefix}executions WHERE id {d.in_ids('$1')}", d.enc_ids(list(by_id))
            )
            stored = [by_id[str(r[0])] for r in found]
            events = sorted({canonical_id(x.replay_of, "execution.replay_of") for x in stored})
            if events:
                await tx.execute(q.events_reopen, d.enc_ids(events))
        order = {x.id: i for i, x in enumerate(executions)}
        return sorted(stored, key=lambda x: order[x.id])

    # --- replay jobs -------------------------------------------------------------------

    def _job(self, row: Row) -> ReplayJobRecord:
        d = self.dialect
        return ReplayJobRecord(
            id=str(row[0]),
            state=ReplayState(row[1]),
            spec=d.dec_json(row[2]),
            progress=d.dec_json(row[3]),
            created_at=d.dec_time(row[4]),
            updated_at=d.dec_time(row[5]),
            owner=row[6],
            lease_expires_at=d.dec_time(row[7]) if row[7] is not None else None,
            resume_after=decode_cursor(row[8]),
        )

    async def create_replay_job(self, tenant: str, job: ReplayJobRecord) -> None:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            await tx.execute(
                f"INSERT INTO {q.prefix}replay_jobs (id, state, spec, progress, created_at, updated_at,"
                " owner, lease_expires_at, resume_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                canonical_id(job.id, "replay.id"),
                job.state.value,
                d.enc_json(job.spec),
                d.enc_json(job.progress),
                d.enc_time(job.created_at),
                d.enc_time(job.updated_at),
                job.owner,
                d.enc_time(job.lease_expires_at) if job.lease_expires_at is not None else None,
                encode_cursor(job.resume_after),
            )

    async def get_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        key = lookup_id(job_id)
        if key is None:
            raise replay_not_found(tenant, job_id)
        async with self._tx(tenant, write=False) as (tx, q):
            row = await tx.fetchrow(f"SELECT {_JOB_COLUMNS} FROM {q.prefix}replay_jobs WHERE id = $1", key)
        if row is None:
            raise replay_not_found(tenant, job_id)
        return self._job(row)

    async def update_replay_job(
        self,
        tenant: str,
        job_id: str,
        progress: dict[str, Any],
        state: ReplayState,
        *,
        owner: str = "",
        until: datetime | None = None,
        after: Cursor | None = None,
    ) -> bool:
        d = self.dialect
        lease = d.enc_time(until) if until is not None and not state.is_final else None
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(
                f"UPDATE {q.prefix}replay_jobs SET progress = $2, state = $3, updated_at = $4,"
                " lease_expires_at = $5, resume_after = $6"
                " WHERE id = $1 AND state = 'running' AND owner = $7 RETURNING id",
                canonical_id(job_id, "replay.id"),
                d.enc_json(progress),
                state.value,
                d.enc_time(utcnow()),
                lease,
                encode_cursor(after),
                owner,
            )
        return row is not None

    async def cancel_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        key = lookup_id(job_id)
        if key is None:
            raise replay_not_found(tenant, job_id)
        async with self._tx(tenant, write=True) as (tx, q):
            await tx.execute(
                f"UPDATE {q.prefix}replay_jobs SET state = 'cancelled', updated_at = $2, lease_expires_at = NULL"
                " WHERE id = $1 AND state = 'running'",
                key,
                self.dialect.enc_time(utcnow()),
            )
        return await self.get_replay_job(tenant, job_id)

    async def claim_replay_jobs(
        self, tenant: str, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[ReplayJobRecord]:
        if limit <= 0:
            return []
        d = self.dialect
        # SQLite serializes writers (the claim is one write transaction); PostgreSQL skips rows
        # another process is claiming at the same moment
        lock = " FOR UPDATE SKIP LOCKED" if d.name == "postgres" else ""
        async with self._tx(tenant, write=False) as (tx, q):
            # every process looks often: a read first, so a look that finds nothing writes nothing
            found = await tx.fetchrow(
                f"SELECT id FROM {q.prefix}replay_jobs WHERE {_expired('$1')} LIMIT 1", d.enc_time(now)
            )
        if found is None:
            return []
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(
                f"UPDATE {q.prefix}replay_jobs SET owner = $1, lease_expires_at = $2, updated_at = $3"
                f" WHERE id IN (SELECT id FROM {q.prefix}replay_jobs WHERE {_expired('$3')}"
                " ORDER BY created_at, id"
                f" LIMIT {int(limit)}{lock}) AND state = 'running' RETURNING {_JOB_COLUMNS}",
                owner,
                d.enc_time(until),
                d.enc_time(now),
            )
        return sorted((self._job(r) for r in rows), key=lambda j: (j.created_at, j.id))

    async def release_replay_job(self, tenant: str, job_id: str, owner: str) -> bool:
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(
                f"UPDATE {q.prefix}replay_jobs SET lease_expires_at = NULL"
                " WHERE id = $1 AND state = 'running' AND owner = $2 RETURNING id",
                canonical_id(job_id, "replay.id"),
                owner,
            )
        return row is not None

    # --- retention ---------------------------------------------------------------------

    async def get_retention(self, tenant: str) -> RetentionPolicy:
        async with self._tx(tenant, write=False) as (tx, q):
            row = await tx.fetchrow(
                f"SELECT events_seconds, executions_seconds, updated_at FROM {q.prefix}retention_policy"
            )
        if row is None:
            return RetentionPolicy()
        return RetentionPolicy(int(row[0]), int(row[1]), self.dialect.dec_time(row[2]))

    async def set_retention(self, tenant: str, policy: RetentionPolicy) -> RetentionPolicy:
        now = utcnow()
        async with self._tx(tenant, write=True) as (tx, q):
            await tx.execute(
                f"INSERT INTO {q.prefix}retention_policy (singleton, events_seconds, executions_seconds, updated_at)"
                " VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE SET"
                " events_seconds = excluded.events_seconds, executions_seconds = excluded.executions_seconds,"
                " updated_at = excluded.updated_at",
                policy.events_seconds,
                policy.executions_seconds,
                self.dialect.enc_time(now),
            )
        return RetentionPolicy(policy.events_seconds, policy.executions_seconds, now)

    async def delete_events_before(self, tenant: str, before: datetime, limit: int) -> int:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(
                # time < $1 outside too: PostgreSQL then looks only in the partitions that old
                f"DELETE FROM {q.prefix}events WHERE time < $1 AND id IN (SELECT id FROM {q.prefix}events"
                f" WHERE time < $1 ORDER BY time, id LIMIT {int(limit)}) RETURNING id",
                d.enc_time(before),
            )
            if rows:
                # a dedup key would answer a redelivery with an event that is gone
                ids = d.enc_ids([str(r[0]) for r in rows])
                await tx.execute(f"DELETE FROM {q.prefix}event_dedup WHERE event_id {d.in_ids('$1')}", ids)
        return len(rows)

    async def delete_executions_before(self, tenant: str, before: datetime, limit: int) -> int:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            found = await tx.fetch(
                f"SELECT id FROM {q.prefix}executions WHERE finished_at < $1 AND status IN ({_FINAL})"
                f" ORDER BY finished_at LIMIT {int(limit)}",
                d.enc_time(before),
            )
            ids = d.enc_ids([str(r[0]) for r in found])
            if found:
                await tx.execute(f"DELETE FROM {q.prefix}attempts WHERE execution_id {d.in_ids('$1')}", ids)
                await tx.execute(f"DELETE FROM {q.prefix}executions WHERE id {d.in_ids('$1')}", ids)
        return len(found)

    # --- usage -------------------------------------------------------------------------

    async def usage(self, tenant: str) -> StoreUsage:
        out = StoreUsage()
        postgres = self.dialect.name == "postgres"
        async with self._tx(tenant, write=False) as (tx, q):
            for table in _USAGE_TABLES:
                count = await tx.fetchrow(f"SELECT COUNT(*) FROM {q.prefix}{table}")
                size = 0
                if postgres:
                    # a partitioned table (events) has no storage of its own: its partitions' sizes
                    row = await tx.fetchrow(
                        "SELECT COALESCE((SELECT SUM(pg_total_relation_size(relid))"
                        " FROM pg_partition_tree($1::regclass)), pg_total_relation_size($1::regclass))",
                        q.prefix + table,
                    )
                    size = int(row[0]) if row is not None else 0
                else:
                    size = await _sqlite_table_bytes(tx, table)
                out.tables[table] = TableUsage(int(count[0]) if count is not None else 0, size)
            if postgres:
                row = await tx.fetchrow(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
                    q.prefix[1:-2].replace('""', '"'),
                )
            else:
                row = await tx.fetchrow("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            out.total_bytes = int(row[0]) if row is not None and row[0] is not None else 0
        return out


async def _sqlite_table_bytes(tx: Any, table: str) -> int:
    try:
        row = await tx.fetchrow("SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = $1", table)
    except Exception:  # a build without the dbstat virtual table
        return 0
    return int(row[0]) if row is not None else 0


__all__ = ["SqlEventArchive", "envelope_of", "selection_where"]
