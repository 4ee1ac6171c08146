"""The event-archive role of :class:`~neoactions.server.persistence.memory.MemoryStore`: the same
answers as :mod:`.sql_eventstore`, over the in-memory tables."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from neoactions.domain.model import Execution, utcnow
from neoactions.server.eventstore.port import (
    Cursor,
    EventSelection,
    ReplayJobRecord,
    ReplayState,
    RetentionPolicy,
    StoreUsage,
    TableUsage,
    replay_not_found,
)
from neoactions.server.persistence.codec import (
    EXECUTION_COLUMNS,
    canonical_id,
    check_tenant,
    execution_params,
    from_micros,
    lookup_id,
    to_micros,
)
from neoactions.server.persistence.filters import parse_type_pattern
from neoactions.server.persistence.memory_tables import DIALECT, FINAL, Row, Tables


def _selection_test(s: EventSelection) -> Any:
    import re

    pattern = parse_type_pattern(s.type_pattern)
    regex = re.compile(pattern.regex) if pattern is not None and not pattern.exact else None
    exact = pattern.exact if pattern is not None else ""
    start = to_micros(s.start_time) if s.start_time is not None else None
    end = to_micros(s.end_time) if s.end_time is not None else None
    ids = {canonical_id(i, "filter.event_ids") for i in s.event_ids} if s.event_ids else None

    def test(row: Row) -> bool:
        return (
            (not exact or row["type"] == exact)
            and (regex is None or regex.search("." + row["type"]) is not None)
            and (not s.correlation_id or row["correlation_id"] == s.correlation_id)
            and (not s.source or row["source"] == s.source)
            and (s.status is None or row["status"] == s.status.value)
            and (start is None or row["time"] >= start)
            and (end is None or row["time"] < end)
            and (ids is None or row["id"] in ids)
        )

    return test


def _envelope(row: Row, tenant: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "source": row["source"],
        "subject": row["subject"],
        "aggregate_type": row["aggregate_type"],
        "aggregate_id": row["aggregate_id"],
        "time": from_micros(row["time"]).isoformat(),
        "data": json.loads(row["data"]),
        "metadata": json.loads(row["metadata"]),
        "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"],
        "tenant": tenant,
    }


class MemoryEventArchive:
    """``EventArchive`` over the in-memory tables (a mixin of ``MemoryStore``)."""

    async def _tables(self, tenant: str) -> Tables:
        raise NotImplementedError

    async def scan_envelopes(
        self, tenant: str, selection: EventSelection, after: Cursor | None, limit: int
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        test = _selection_test(selection)
        if after is not None:
            after = (after[0], canonical_id(after[1], "cursor"))
        t = await self._tables(tenant)
        # events are mostly stored in time order: the sort is close to linear
        ordered = sorted((r for r in t.events.values() if test(r)), key=lambda r: (r["time"], r["id"]))
        if after is not None:
            ordered = [r for r in ordered if (r["time"], r["id"]) > after]
        rows = ordered[:limit]
        if not rows:
            return [], None
        return [_envelope(r, tenant) for r in rows], (rows[-1]["time"], rows[-1]["id"])

    async def append_replays(self, tenant: str, executions: Sequence[Execution]) -> list[Execution]:
        rows = []
        for x in executions:
            check_tenant(x.tenant, tenant, "execution.tenant")
            if not x.replay_of or not x.action_id:
                raise ValueError("a replayed execution needs replay_of and action_id")
            row = dict(zip(EXECUTION_COLUMNS, execution_params(x, DIALECT), strict=True))
            row["queued_at"] = None
            rows.append((x, row))
        t = await self._tables(tenant)
        taken = {(r["replay_of"], r["action_id"]) for r in t.executions.values() if r.get("replay_of")}
        stored: list[Execution] = []
        for x, row in rows:
            key = (row["replay_of"], row["action_id"])
            if key in taken or row["id"] in t.executions:
                continue
            taken.add(key)
            t.executions[row["id"]] = row
            if row["event_id"] is not None:
                t.by_event.setdefault(row["event_id"], set()).add(row["id"])
            stored.append(x)
        t.reopen({x.replay_of for x in stored})
        return stored

    # --- replay jobs -------------------------------------------------------------------

    async def create_replay_job(self, tenant: str, job: ReplayJobRecord) -> None:
        t = await self._tables(tenant)
        key = canonical_id(job.id, "replay.id")
        t.replay_jobs[key] = dataclasses.replace(job, id=key, spec=_copy(job.spec), progress=_copy(job.progress))

    async def get_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        key = lookup_id(job_id)
        t = await self._tables(tenant)
        job = t.replay_jobs.get(key) if key is not None else None
        if job is None:
            raise replay_not_found(tenant, job_id)
        return _job_copy(job)

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
        t = await self._tables(tenant)
        job = t.replay_jobs.get(canonical_id(job_id, "replay.id"))
        if job is None or job.state is not ReplayState.RUNNING or job.owner != owner:
            return False
        job.progress, job.state, job.updated_at = _copy(progress), state, utcnow()
        job.lease_expires_at = None if state.is_final else until
        job.resume_after = after
        return True

    async def cancel_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        key = lookup_id(job_id)
        t = await self._tables(tenant)
        job = t.replay_jobs.get(key) if key is not None else None
        if job is None:
            raise replay_not_found(tenant, job_id)
        if job.state is ReplayState.RUNNING:
            job.state, job.updated_at, job.lease_expires_at = ReplayState.CANCELLED, utcnow(), None
        return _job_copy(job)

    async def claim_replay_jobs(
        self, tenant: str, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[ReplayJobRecord]:
        t = await self._tables(tenant)
        expired = sorted(
            (
                j
                for j in t.replay_jobs.values()
                if j.state is ReplayState.RUNNING and (j.lease_expires_at is None or j.lease_expires_at < now)
            ),
            key=lambda j: (j.created_at, j.id),
        )[: max(0, limit)]
        for job in expired:
            job.owner, job.lease_expires_at, job.updated_at = owner, until, now
        return [_job_copy(j) for j in expired]

    async def release_replay_job(self, tenant: str, job_id: str, owner: str) -> bool:
        t = await self._tables(tenant)
        job = t.replay_jobs.get(canonical_id(job_id, "replay.id"))
        if job is None or job.state is not ReplayState.RUNNING or job.owner != owner:
            return False
        job.lease_expires_at = None
        return True

    # --- retention ---------------------------------------------------------------------

    async def get_retention(self, tenant: str) -> RetentionPolicy:
        t = await self._tables(tenant)
        policy = t.retention
        if not isinstance(policy, RetentionPolicy):
            return RetentionPolicy()
        return RetentionPolicy(policy.events_seconds, policy.executions_seconds, policy.updated_at)

    async def set_retention(self, tenant: str, policy: RetentionPolicy) -> RetentionPolicy:
        t = await self._tables(tenant)
        stored = RetentionPolicy(policy.events_seconds, policy.executions_seconds, utcnow())
        t.retention = stored
        return dataclasses.replace(stored)

    async def delete_events_before(self, tenant: str, before: datetime, limit: int) -> int:
        cutoff = to_micros(before)
        t = await self._tables(tenant)
        old = sorted((r["time"], r["id"]) for r in t.events.values() if r["time"] < cutoff)[:limit]
        gone = {event_id for _, event_id in old}
        for event_id in gone:
            del t.events[event_id]
        if gone:
            # a dedup key would answer a redelivery with an event that is gone
            for key in [k for k, (event_id, _) in t.dedup.items() if event_id in gone]:
                del t.dedup[key]
        return len(old)

    async def delete_executions_before(self, tenant: str, before: datetime, limit: int) -> int:
        cutoff = to_micros(before)
        t = await self._tables(tenant)
        old = sorted(
            (r["finished_at"], r["id"])
            for r in t.executions.values()
            if r["finished_at"] is not None and r["finished_at"] < cutoff and r["status"] in FINAL
        )[:limit]
        for _, execution_id in old:
            row = t.executions.pop(execution_id)
            t.attempts.pop(execution_id, None)
            siblings = t.by_event.get(row["event_id"]) if row["event_id"] is not None else None
            if siblings is not None:
                siblings.discard(execution_id)
                if not siblings:
                    del t.by_event[row["event_id"]]
        return len(old)

    async def usage(self, tenant: str) -> StoreUsage:
        t = await self._tables(tenant)
        out = StoreUsage()
        out.tables["events"] = TableUsage(
            len(t.events), sum(len(r["data"]) + len(r["metadata"]) for r in t.events.values())
        )
        out.tables["executions"] = TableUsage(
            len(t.executions), sum(len(r["input"] or "") + len(r["output"] or "") for r in t.executions.values())
        )
        out.tables["attempts"] = TableUsage(sum(len(a) for a in t.attempts.values()), 0)
        out.tables["actions"] = TableUsage(len(t.actions), 0)
        out.tables["action_versions"] = TableUsage(len(t.versions), sum(len(v.spec) for v in t.versions.values()))
        out.total_bytes = sum(u.bytes for u in out.tables.values())
        return out


def _job_copy(job: ReplayJobRecord) -> ReplayJobRecord:
    return dataclasses.replace(job, spec=_copy(job.spec), progress=_copy(job.progress))


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(doc))
    return result


__all__ = ["MemoryEventArchive"]
