"""The tables of :class:`~neoactions.server.persistence.memory.MemoryStore`: one tenant's rows
as the embedded store writes them, and the tests a statement's WHERE clause would make.

Internal to the in-memory store (:mod:`.memory`, :mod:`.memory_leases`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from neoactions.domain.keys import ApiKey
from neoactions.domain.model import FINAL_STATUSES, UNFINISHED_STATUSES, EventStatus, Execution
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import (
    EXECUTION_COLUMNS,
    SQLITE,
    attempt_from_row,
    canonical_id,
    execution_from_row,
    lookup_id,
    to_micros,
)
from neoactions.server.persistence.filters import parse_type_pattern
from neoactions.server.store import EventFilter, ExecutionFilter, StoredSecret

#: the embedded store's encoding of times (µs), JSON (text) and ids (canonical text)
DIALECT = SQLITE
UNFINISHED = frozenset(s.value for s in UNFINISHED_STATUSES)
FINAL = frozenset(s.value for s in FINAL_STATUSES)
RETRYABLE = frozenset({"failed", "timed_out", "cancelled", "dead_lettered"})

#: a row: column name -> stored value
Row = dict[str, Any]


@dataclass(slots=True)
class ActionRow:
    id: str
    name: str
    current_version: int
    enabled: bool
    deleted: bool
    created_at: int
    updated_at: int


@dataclass(slots=True)
class Version:
    spec: str
    enabled: bool
    created_at: int


@dataclass(slots=True)
class Tables:
    """One tenant's data."""

    events: dict[str, Row] = field(default_factory=dict)
    actions: dict[str, ActionRow] = field(default_factory=dict)
    versions: dict[tuple[str, int], Version] = field(default_factory=dict)
    executions: dict[str, Row] = field(default_factory=dict)
    #: execution id -> attempt number -> the attempt's columns
    attempts: dict[str, dict[int, tuple[Any, ...]]] = field(default_factory=dict)
    #: event id -> its executions' ids
    by_event: dict[str, set[str]] = field(default_factory=dict)
    #: dedup key -> (event id, recorded at)
    dedup: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: replay job id -> the job (see :mod:`.memory_eventstore`)
    replay_jobs: dict[str, Any] = field(default_factory=dict)
    #: the retention policy (see :mod:`.memory_eventstore`); ``None`` keeps everything
    retention: Any = None
    #: the audit log's rows, in ``sql_audit.AUDIT_COLUMNS`` order (see :mod:`.memory_audit`)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    #: workflow step rows and run controls (see :mod:`.memory_workflows`)
    workflows: dict[str, Any] = field(default_factory=dict)
    #: secret name -> the secret, its value sealed (see :mod:`.memory_secrets`)
    secrets: dict[str, StoredSecret] = field(default_factory=dict)

    def live_action(self, name: str) -> ActionRow | None:
        return next((a for a in self.actions.values() if a.name == name and not a.deleted), None)

    def execution(self, tenant: str, row: Row, *, attempts: bool = True) -> Execution:
        """The stored execution ``row`` (with its attempts unless told otherwise)."""
        execution = execution_from_row(values_of(row, EXECUTION_COLUMNS), tenant, DIALECT)
        if attempts:
            numbered = self.attempts.get(row["id"], {})
            execution.attempts = [attempt_from_row(numbered[n], DIALECT) for n in sorted(numbered)]
        return execution

    def settle(self, event_ids: Iterable[str]) -> None:
        """Complete or fail each event once every execution of it is final."""
        for event_id in event_ids:
            event = self.events.get(event_id)
            statuses = [self.executions[x]["status"] for x in self.by_event.get(event_id, ())]
            if event is None or not statuses or any(s not in FINAL for s in statuses):
                continue
            ok = all(s == "succeeded" for s in statuses)
            event["status"] = (EventStatus.COMPLETED if ok else EventStatus.FAILED).value

    def reopen(self, event_ids: Iterable[str]) -> None:
        """Events of requeued executions are processing again."""
        for event_id in event_ids:
            if event_id in self.events:
                self.events[event_id]["status"] = EventStatus.PROCESSING.value


@dataclass(slots=True)
class MemoryData:
    """What several :class:`MemoryStore` instances share, as processes share a database."""

    #: slug -> (slug, display name, created at)
    tenants: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    tables: dict[str, Tables] = field(default_factory=dict)
    #: API key id -> (key, token hash)
    api_keys: dict[str, tuple[ApiKey, str]] = field(default_factory=dict)
    #: installed plugins (see memory_plugins): versions and artifacts
    plugins: dict[str, Any] = field(default_factory=dict)


def values_of(row: Row, columns: Iterable[str]) -> list[Any]:
    return [row[c] for c in columns]


def well_formed_ids(execution_ids: Sequence[str]) -> list[str]:
    """The well-formed ids among ``execution_ids`` (a malformed one cannot name anything)."""
    return list(dict.fromkeys(k for k in (lookup_id(i) for i in execution_ids) if k is not None))


def is_due(row: Row, now: int) -> bool:
    """Due at ``now`` (a ``waiting`` row only at its time: without one it waits to be woken)
    and not leased by a live owner."""
    next_at, expires = row["next_attempt_at"], row["lease_expires_at"]
    due = next_at <= now if next_at is not None else row["status"] != "waiting"
    return due and (expires is None or expires <= now)


def claim_order(row: Row) -> tuple[int, int, str]:
    return (-int(row["priority"]), row["created_at"], row["id"])


def owned_by(row: Row, owner: str) -> bool:
    """Leased to ``owner`` (nobody owns what ``''`` names, as NULL equals nothing in SQL)."""
    return bool(owner) and row["lease_owner"] == owner


def drop_lease(row: Row) -> None:
    row["lease_owner"] = None
    row["lease_expires_at"] = None
    row["queued_at"] = None


def requeue(row: Row, now: int) -> None:
    """A new attempt series: pending again, no lease, off the queue."""
    row.update(
        status="pending",
        attempt_base=row["attempt_count"],
        series_started_at=now,
        finished_at=None,
        next_attempt_at=None,
        updated_at=now,
        output=None,
        error=None,
        error_type="",
    )
    drop_lease(row)


def execution_test(f: ExecutionFilter) -> Callable[[Row], bool]:
    """Whether a stored execution matches ``f`` (validated once, here)."""
    event_id = canonical_id(f.event_id, "filter.event_id") if f.event_id else ""
    statuses = {s.value for s in f.statuses}
    start = to_micros(f.start_time) if f.start_time is not None else None
    end = to_micros(f.end_time) if f.end_time is not None else None

    def test(row: Row) -> bool:
        return (
            (not f.action_name or row["action_name"] == f.action_name)
            and (f.status is None or row["status"] == f.status.value)
            and (not statuses or row["status"] in statuses)
            and (not event_id or row["event_id"] == event_id)
            and (not f.correlation_id or row["correlation_id"] == f.correlation_id)
            and (start is None or row["created_at"] >= start)
            and (end is None or row["created_at"] < end)
            and (not f.error_type or row["error_type"] == f.error_type)
        )

    return test


def event_test(f: EventFilter) -> Callable[[Row], bool]:
    pattern = parse_type_pattern(f.type_pattern)
    regex = re.compile(pattern.regex) if pattern is not None and not pattern.exact else None
    exact = pattern.exact if pattern is not None else ""
    start = to_micros(f.start_time) if f.start_time is not None else None
    end = to_micros(f.end_time) if f.end_time is not None else None

    def test(row: Row) -> bool:
        return (
            (not exact or row["type"] == exact)
            and (regex is None or regex.search("." + row["type"]) is not None)
            and (not f.correlation_id or row["correlation_id"] == f.correlation_id)
            and (f.status is None or row["status"] == f.status.value)
            and (start is None or row["time"] >= start)
            and (end is None or row["time"] < end)
        )

    return test


def page_after(token: str, kind: str) -> tuple[int, str] | None:
    """The (time µs, id) page position in ``token``."""
    after = tokens.decode(kind, token, (int, str))
    if after is None:
        return None
    return int(after[0]), canonical_id(str(after[1]), "page_token")


def newest_page(rows: Iterable[Row], time_column: str, after: tuple[int, str] | None, limit: int) -> list[Row]:
    """Up to ``limit`` + 1 rows after ``after``, newest first by ``(time_column, id)``."""
    ordered = sorted(rows, key=lambda r: (r[time_column], r["id"]), reverse=True)
    if after is not None:
        ordered = [r for r in ordered if (r[time_column], r["id"]) < after]
    return ordered[: limit + 1]


__all__ = [
    "DIALECT",
    "FINAL",
    "RETRYABLE",
    "UNFINISHED",
    "ActionRow",
    "MemoryData",
    "Row",
    "Tables",
    "Version",
    "claim_order",
    "drop_lease",
    "event_test",
    "execution_test",
    "is_due",
    "newest_page",
    "owned_by",
    "page_after",
    "requeue",
    "values_of",
    "well_formed_ids",
]
