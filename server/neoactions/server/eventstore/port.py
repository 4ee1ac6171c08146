"""The store's event-archive role: what replay, backtesting and retention ask of a store.

Every method is scoped to one tenant, like the rest of the store port. Implemented by
``SqlEventArchive`` (SQLite and PostgreSQL) and ``MemoryEventArchive`` (the in-memory store).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from neoactions.domain.model import EventStatus, Execution

#: a position in the event archive: ``(time µs, id)`` of the last event read
Cursor = tuple[int, str]


@dataclass(slots=True)
class EventSelection:
    """Which stored events a replay or a backtest reads; an empty field does not filter."""

    #: an event-type pattern (``orders.*``, ``orders.**``); empty or ``*`` = any
    type_pattern: str = ""
    #: events whose ``time`` is at or after this
    start_time: datetime | None = None
    #: events whose ``time`` is before this
    end_time: datetime | None = None
    correlation_id: str = ""
    source: str = ""
    status: EventStatus | None = None
    #: only these events (by id)
    event_ids: tuple[str, ...] = ()


class ReplayState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self is not ReplayState.RUNNING


@dataclass(slots=True)
class ReplayJobRecord:
    """A replay running (or run) in the background, as stored."""

    id: str
    state: ReplayState
    #: what it replays (selection, actions, rate), JSON
    spec: dict[str, Any]
    #: how far it got (counts per action, events read, executions created ...), JSON
    progress: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    #: the process running it (its lease holder) and until when: a running job whose lease
    #: expired lost its process and is taken over by another
    owner: str = ""
    lease_expires_at: datetime | None = None
    #: the last event it read (recorded with its progress): where it goes on after a take-over
    resume_after: Cursor | None = None


def encode_cursor(cursor: Cursor | None) -> str:
    """A cursor as stored (``"time µs:id"``; empty for none)."""
    return "" if cursor is None else f"{cursor[0]}:{cursor[1]}"


def decode_cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    micros, _, event_id = text.partition(":")
    return int(micros), event_id


@dataclass(slots=True)
class RetentionPolicy:
    """How long a tenant keeps events and finished executions; 0 keeps them forever."""

    events_seconds: int = 0
    executions_seconds: int = 0
    updated_at: datetime | None = None


@dataclass(slots=True)
class TableUsage:
    rows: int = 0
    #: bytes on disk (PostgreSQL: with indexes and TOAST; SQLite: the table's pages when the
    #: build has ``dbstat``, else 0; memory: the stored JSON text)
    bytes: int = 0


@dataclass(slots=True)
class StoreUsage:
    """Rows and sizes of one tenant's tables (what an overview shows)."""

    tables: dict[str, TableUsage] = field(default_factory=dict)
    #: the whole tenant's storage in bytes (SQLite: its file; PostgreSQL: its schema)
    total_bytes: int = 0


class EventArchive(Protocol):
    """Stored events read in bulk, replays recorded once, replay jobs, retention and usage."""

    async def scan_envelopes(
        self, tenant: str, selection: EventSelection, after: Cursor | None, limit: int
    ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """Up to ``limit`` events of ``selection`` after ``after``, oldest first by ``(time, id)``,
        each as the envelope conditions see (``Event.envelope()``); and the cursor of the last
        one (``None`` when there are no more)."""

    async def append_replays(self, tenant: str, executions: Sequence[Execution]) -> list[Execution]:
        """Store executions a replay created (each with ``replay_of`` and ``action_id`` set),
        skipping those whose (``replay_of``, ``action_id``) is already stored; returns the ones
        stored. Their events become ``processing`` again."""

    async def create_replay_job(self, tenant: str, job: ReplayJobRecord) -> None: ...

    async def get_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        """``NotFound`` (REPLAY_NOT_FOUND)."""

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
        """Record the progress (and state) of a running job held by ``owner``, with where it got
        (``after``), and extend its lease to ``until`` (a final state drops the lease). ``False``,
        writing nothing, when the job is no longer running (cancelled meanwhile) or no longer
        held by ``owner`` (taken over after its lease expired)."""

    async def cancel_replay_job(self, tenant: str, job_id: str) -> ReplayJobRecord:
        """Mark a running job cancelled (a final job is returned as is). ``NotFound`` (REPLAY_NOT_FOUND)."""

    async def claim_replay_jobs(
        self, tenant: str, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[ReplayJobRecord]:
        """Take over up to ``limit`` running jobs whose lease expired before ``now`` (or was
        released): each becomes ``owner``'s until ``until``; returns them as claimed. A job
        whose lease is live is never claimed."""

    async def release_replay_job(self, tenant: str, job_id: str, owner: str) -> bool:
        """Give up ``owner``'s lease of a running job (its process stops), so another process
        takes it over at once; ``False`` when ``owner`` did not hold it."""

    async def get_retention(self, tenant: str) -> RetentionPolicy: ...

    async def set_retention(self, tenant: str, policy: RetentionPolicy) -> RetentionPolicy: ...

    async def delete_events_before(self, tenant: str, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events whose ``time`` is before ``before`` (oldest first); how many."""

    async def delete_executions_before(self, tenant: str, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` finished executions (with their attempts) that finished before
        ``before``; how many."""

    async def usage(self, tenant: str) -> StoreUsage:
        """Row counts and sizes of the tenant's events, executions, attempts and actions."""


def replay_not_found(tenant: str, job_id: str) -> Exception:
    from neoactions.domain.errors import NotFound

    return NotFound(
        f"replay {job_id!r} not found", reason="REPLAY_NOT_FOUND", metadata={"tenant": tenant, "replay_id": job_id}
    )


__all__ = [
    "Cursor",
    "EventArchive",
    "EventSelection",
    "ReplayJobRecord",
    "ReplayState",
    "RetentionPolicy",
    "StoreUsage",
    "TableUsage",
    "decode_cursor",
    "encode_cursor",
    "replay_not_found",
]
