"""``MemoryStore``: every role of the ``Store`` port in memory, the fake of the unit tests.

It passes the same contract suite as the SQL stores (``tests/contract``) and keeps the
rows the embedded store would write — times as microseconds, JSON as text, canonical
ids — built and read back by the same conversions (:mod:`.codec`), so what comes out
of it equals what comes out of ``SqliteStore``. Each call is one transaction: it
yields to the loop once (a round trip), then reads and writes without awaiting, so no
other call sees it half done; a call that fails writes nothing.

Several stores may share one :class:`MemoryData` (several processes on one database).
Nothing is durable: it is not a store to run the server on, and ``open_store`` never
returns it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from neoactions.server.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from neoactions.server.ids import new_id
from neoactions.server.model import (
    ADMIN_TENANT,
    FINAL_STATUSES,
    JSON,
    UNFINISHED_STATUSES,
    Action,
    Attempt,
    Event,
    EventStatus,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    Tenant,
    utcnow,
)
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import (
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    SQLITE,
    action_from_row,
    action_not_found,
    as_utc,
    attempt_from_row,
    attempt_params,
    canonical_id,
    check_new_slug,
    check_tenant,
    error_json,
    event_from_row,
    event_params,
    execution_from_row,
    execution_params,
    is_slug,
    lookup_id,
    page_limit,
    tenant_from_row,
    tenant_not_found,
    to_micros,
)
from neoactions.server.persistence.filters import parse_type_pattern
from neoactions.server.persistence.sqlstore import _begun, _ended, _execution_not_found, _fence
from neoactions.server.store import (
    DEFAULT_PAGE_SIZE,
    DUPLICATE_EVENT,
    ActionFilter,
    AttemptChange,
    AttemptFinish,
    AttemptStart,
    EventFilter,
    ExecutionFilter,
    ExecutionState,
    Page,
    Store,
)

#: the embedded store's encoding of times (µs), JSON (text) and ids (canonical text)
_D = SQLITE
_UNFINISHED = frozenset(s.value for s in UNFINISHED_STATUSES)
_FINAL = frozenset(s.value for s in FINAL_STATUSES)
_RETRYABLE = frozenset({"failed", "timed_out", "cancelled", "dead_lettered"})

#: a row: column name -> stored value
_Row = dict[str, Any]


@dataclass(slots=True)
class _ActionRow:
    id: str
    name: str
    current_version: int
    enabled: bool
    deleted: bool
    created_at: int
    updated_at: int


@dataclass(slots=True)
class _Version:
    spec: str
    enabled: bool
    created_at: int


@dataclass(slots=True)
class _Tables:
    """One tenant's data."""

    events: dict[str, _Row] = field(default_factory=dict)
    actions: dict[str, _ActionRow] = field(default_factory=dict)
    versions: dict[tuple[str, int], _Version] = field(default_factory=dict)
    executions: dict[str, _Row] = field(default_factory=dict)
    #: execution id -> attempt number -> the attempt's columns
    attempts: dict[str, dict[int, tuple[Any, ...]]] = field(default_factory=dict)
    #: event id -> its executions' ids
    by_event: dict[str, set[str]] = field(default_factory=dict)
    #: dedup key -> (event id, recorded at)
    dedup: dict[str, tuple[str, int]] = field(default_factory=dict)

    def live_action(self, name: str) -> _ActionRow | None:
        return next((a for a in self.actions.values() if a.name == name and not a.deleted), None)


@dataclass(slots=True)
class MemoryData:
    """What several :class:`MemoryStore` instances share, as processes share a database."""

    #: slug -> (slug, display name, created at)
    tenants: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    tables: dict[str, _Tables] = field(default_factory=dict)


def _columns(row: _Row, columns: Iterable[str]) -> list[Any]:
    return [row[c] for c in columns]


def _ids(execution_ids: Sequence[str]) -> list[str]:
    """The well-formed ids among ``execution_ids`` (a malformed one cannot name anything)."""
    return list(dict.fromkeys(k for k in (lookup_id(i) for i in execution_ids) if k is not None))


def _due(row: _Row, now: int) -> bool:
    """Due at ``now`` and not leased by a live owner."""
    next_at, expires = row["next_attempt_at"], row["lease_expires_at"]
    return (next_at is None or next_at <= now) and (expires is None or expires <= now)


def _claim_order(row: _Row) -> tuple[int, int, str]:
    return (-int(row["priority"]), row["created_at"], row["id"])


def _owned(row: _Row, owner: str) -> bool:
    """Leased to ``owner`` (nobody owns what ``''`` names, as NULL equals nothing in SQL)."""
    return bool(owner) and row["lease_owner"] == owner


def _release(row: _Row) -> None:
    row["lease_owner"] = None
    row["lease_expires_at"] = None
    row["queued_at"] = None


def _requeue(row: _Row, now: int) -> None:
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
    _release(row)


def _execution_test(f: ExecutionFilter) -> Callable[[_Row], bool]:
    """Whether a stored execution matches ``f`` (validated once, here)."""
    event_id = canonical_id(f.event_id, "filter.event_id") if f.event_id else ""
    statuses = {s.value for s in f.statuses}
    start = to_micros(f.start_time) if f.start_time is not None else None
    end = to_micros(f.end_time) if f.end_time is not None else None

    def test(row: _Row) -> bool:
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


def _event_test(f: EventFilter) -> Callable[[_Row], bool]:
    pattern = parse_type_pattern(f.type_pattern)
    regex = re.compile(pattern.regex) if pattern is not None and not pattern.exact else None
    exact = pattern.exact if pattern is not None else ""
    start = to_micros(f.start_time) if f.start_time is not None else None
    end = to_micros(f.end_time) if f.end_time is not None else None

    def test(row: _Row) -> bool:
        return (
            (not exact or row["type"] == exact)
            and (regex is None or regex.search("." + row["type"]) is not None)
            and (not f.correlation_id or row["correlation_id"] == f.correlation_id)
            and (f.status is None or row["status"] == f.status.value)
            and (start is None or row["time"] >= start)
            and (end is None or row["time"] < end)
        )

    return test


def _after(token: str, kind: str) -> tuple[int, str] | None:
    """The (time µs, id) page position in ``token``."""
    after = tokens.decode(kind, token, (int, str))
    if after is None:
        return None
    return int(after[0]), canonical_id(str(after[1]), "page_token")


def _newest_page(rows: Iterable[_Row], time_column: str, after: tuple[int, str] | None, limit: int) -> list[_Row]:
    """Up to ``limit`` + 1 rows after ``after``, newest first by ``(time_column, id)``."""
    ordered = sorted(rows, key=lambda r: (r[time_column], r["id"]), reverse=True)
    if after is not None:
        ordered = [r for r in ordered if (r[time_column], r["id"]) < after]
    return ordered[: limit + 1]


class MemoryStore:
    """Every ``Store`` method over :class:`MemoryData` (a fresh one unless given)."""

    def __init__(self, data: MemoryData | None = None) -> None:
        self.data = data if data is not None else MemoryData()
        self._open = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if ADMIN_TENANT not in self.data.tenants:
            self.data.tenants[ADMIN_TENANT] = (ADMIN_TENANT, "Admin", to_micros(utcnow()))
            self.data.tables[ADMIN_TENANT] = _Tables()
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def _round_trip(self) -> None:
        """Where a database call would wait: other tasks run; then the call runs whole."""
        await asyncio.sleep(0)
        if not self._open:
            raise Unavailable("the in-memory store is not open")

    async def _tables(self, tenant: str) -> _Tables:
        await self._round_trip()
        tables = self.data.tables.get(tenant) if is_slug(tenant) else None
        if tables is None:
            raise tenant_not_found(tenant)
        return tables

    # --- tenants ---------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        check_new_slug(tenant.slug)
        created = Tenant(tenant.slug, tenant.display_name, as_utc(tenant.created_at))
        await self._round_trip()
        if created.slug in self.data.tenants:
            raise AlreadyExists(
                f"tenant {tenant.slug!r} already exists",
                reason="TENANT_ALREADY_EXISTS",
                metadata={"tenant": tenant.slug},
            )
        self.data.tenants[created.slug] = (created.slug, created.display_name, to_micros(created.created_at))
        self.data.tables[created.slug] = _Tables()
        return created

    async def get_tenant(self, slug: str) -> Tenant:
        if not is_slug(slug):
            raise tenant_not_found(slug)
        await self._round_trip()
        row = self.data.tenants.get(slug)
        if row is None:
            raise tenant_not_found(slug)
        return tenant_from_row(row, _D)

    async def list_tenants(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Tenant]:
        limit = page_limit(page_size)
        after = tokens.decode("tenants", page_token, (str,))
        await self._round_trip()
        slugs = sorted(s for s in self.data.tenants if s > (str(after[0]) if after else ""))[: limit + 1]
        items = [tenant_from_row(self.data.tenants[s], _D) for s in slugs[:limit]]
        more = len(slugs) > limit
        return Page(items, tokens.encode("tenants", [items[-1].slug]) if more else "")

    # --- actions ---------------------------------------------------------------------

    def _action(self, t: _Tables, tenant: str, action: _ActionRow, version: int) -> Action:
        v = t.versions[(action.id, version)]
        return action_from_row(
            (action.id, action.name, action.created_at, version, v.spec, v.enabled, v.created_at), tenant, _D
        )

    async def create_action(self, action: Action) -> Action:
        action_id = canonical_id(action.id, "action.id") if action.id else new_id()
        created = as_utc(action.created_at)
        spec = _D.enc_json(action.spec())
        t = await self._tables(action.tenant)
        if action_id in t.actions or t.live_action(action.name) is not None:
            raise AlreadyExists(
                f"action {action.name!r} already exists",
                reason="ACTION_ALREADY_EXISTS",
                metadata={"tenant": action.tenant, "action": action.name},
            )
        at = to_micros(created)
        t.actions[action_id] = _ActionRow(action_id, action.name, 1, action.enabled, False, at, at)
        t.versions[(action_id, 1)] = _Version(spec, action.enabled, at)
        return dataclasses.replace(action, id=action_id, version=1, created_at=created, updated_at=created)

    def _new_version(self, t: _Tables, tenant: str, row: _ActionRow, spec: str, enabled: bool) -> Action:
        now = to_micros(utcnow())
        version = row.current_version + 1
        t.versions[(row.id, version)] = _Version(spec, enabled, now)
        row.current_version, row.enabled, row.updated_at = version, enabled, now
        return self._action(t, tenant, row, version)

    async def update_action(self, action: Action, expected_version: int | None = None) -> Action:
        spec = _D.enc_json(action.spec())
        t = await self._tables(action.tenant)
        row = t.live_action(action.name)
        if row is None:
            raise action_not_found(action.tenant, action.name)
        if expected_version is not None and expected_version != row.current_version:
            raise Aborted(
                f"action {action.name!r} is at version {row.current_version}, not {expected_version}",
                reason="ACTION_VERSION_MISMATCH",
                metadata={"current_version": str(row.current_version)},
            )
        return self._new_version(t, action.tenant, row, spec, row.enabled)

    async def set_action_enabled(self, tenant: str, name: str, enabled: bool) -> Action:
        t = await self._tables(tenant)
        row = t.live_action(name)
        if row is None:
            raise action_not_found(tenant, name)
        if row.enabled == enabled:
            return self._action(t, tenant, row, row.current_version)
        spec = t.versions[(row.id, row.current_version)].spec
        return self._new_version(t, tenant, row, spec, enabled)

    async def delete_action(self, tenant: str, name: str) -> None:
        t = await self._tables(tenant)
        row = t.live_action(name)
        if row is None:
            raise action_not_found(tenant, name)
        row.deleted, row.updated_at = True, to_micros(utcnow())

    async def get_action(self, tenant: str, name: str, version: int = 0) -> Action:
        t = await self._tables(tenant)
        row = t.live_action(name)
        wanted = version or (row.current_version if row is not None else 0)
        if row is None or (row.id, wanted) not in t.versions:
            raise action_not_found(tenant, name if not version else f"{name}@{version}")
        return self._action(t, tenant, row, wanted)

    async def get_action_version(self, tenant: str, action_id: str, version: int) -> Action:
        key = lookup_id(action_id)
        if key is not None:
            t = await self._tables(tenant)
            row = t.actions.get(key)
            wanted = version or (row.current_version if row is not None else 0)
            if row is not None and (key, wanted) in t.versions:
                return self._action(t, tenant, row, wanted)
        raise action_not_found(tenant, f"{action_id}@{version}")

    async def list_actions(
        self,
        tenant: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
        filter: ActionFilter | None = None,
    ) -> Page[Action]:
        limit = page_limit(page_size)
        after = tokens.decode("actions", page_token, (str,))
        t = await self._tables(tenant)
        low = str(after[0]) if after else ""
        rows = sorted((a for a in t.actions.values() if not a.deleted and a.name > low), key=lambda a: a.name)
        found = (self._action(t, tenant, a, a.current_version) for a in rows)
        matching = [a for a in found if filter is None or filter.accepts(a)]
        items = matching[:limit]
        more = len(matching) > limit
        return Page(items, tokens.encode("actions", [items[-1].name]) if more else "")

    async def all_actions(self, tenant: str) -> list[Action]:
        """Ordered by creation (the matcher's tie-break order)."""
        t = await self._tables(tenant)
        rows = sorted((a for a in t.actions.values() if not a.deleted), key=lambda a: (a.created_at, a.id))
        return [self._action(t, tenant, a, a.current_version) for a in rows]

    # --- events ----------------------------------------------------------------------

    async def append(
        self,
        tenant: str,
        events: Sequence[Event],
        executions: Sequence[Execution],
        dedup_since: datetime | None = None,
    ) -> None:
        fanned_out = {canonical_id(x.event_id, "execution.event_id") for x in executions if x.event_id}
        now = to_micros(utcnow())
        event_rows: list[_Row] = []
        dedup_rows: list[tuple[str, str]] = []
        for e in events:
            check_tenant(e.tenant, tenant, "event.tenant")
            event_id = canonical_id(e.id, "event.id")
            status = EventStatus.PROCESSING if event_id in fanned_out else EventStatus.COMPLETED
            event_rows.append(dict(zip(EVENT_COLUMNS, event_params(e, status, _D), strict=True)))
            key = e.dedup_key() if dedup_since is not None else ""
            if key:
                dedup_rows.append((key, event_id))
        execution_rows: list[_Row] = []
        attempt_rows: list[tuple[Any, ...]] = []
        for x in executions:
            check_tenant(x.tenant, tenant, "execution.tenant")
            row = dict(zip(EXECUTION_COLUMNS, execution_params(x, _D), strict=True))
            row["queued_at"] = None
            execution_rows.append(row)
            if x.status is ExecutionStatus.RUNNING:
                attempt_rows.append(attempt_params(row["id"], _begun(x), _D))
        if not event_rows and not execution_rows:
            return
        t = await self._tables(tenant)
        if dedup_rows:
            assert dedup_since is not None  # keys are only recorded with a window
            since = to_micros(dedup_since)
            keys = [k for k, _ in dedup_rows]
            # a key outside the window no longer counts; a key twice in one append is a duplicate too
            live = [k for k in keys if k in t.dedup and t.dedup[k][1] >= since]
            if live or len(set(keys)) != len(keys):
                raise AlreadyExists(
                    "an event with the same idempotency key was accepted meanwhile", reason=DUPLICATE_EVENT
                )
        event_ids = [r["id"] for r in event_rows]
        execution_ids = [r["id"] for r in execution_rows]
        for ids, stored in ((event_ids, t.events), (execution_ids, t.executions)):
            taken = [i for i in ids if i in stored]
            if taken or len(set(ids)) != len(ids):
                raise AlreadyExists(f"append: an id is already stored ({taken[0] if taken else 'twice'})")
        # checked: from here nothing fails
        for key, event_id in dedup_rows:
            t.dedup[key] = (event_id, now)
        for row in event_rows:
            t.events[row["id"]] = row
        for row in execution_rows:
            t.executions[row["id"]] = row
            if row["event_id"] is not None:
                t.by_event.setdefault(row["event_id"], set()).add(row["id"])
        for attempt in attempt_rows:
            t.attempts.setdefault(attempt[0], {})[attempt[1]] = attempt

    async def find_duplicates(self, tenant: str, keys: Sequence[str], since: datetime) -> dict[str, str]:
        if not keys:
            return {}
        t = await self._tables(tenant)
        after = to_micros(since)
        found = ((k, t.dedup.get(k)) for k in dict.fromkeys(keys))
        return {k: hit[0] for k, hit in found if hit is not None and hit[1] >= after}

    async def purge_dedup(self, tenant: str, before: datetime) -> int:
        t = await self._tables(tenant)
        limit = to_micros(before)
        old = [k for k, (_, at) in t.dedup.items() if at < limit]
        for key in old:
            del t.dedup[key]
        return len(old)

    async def get_event(self, tenant: str, event_id: str) -> Event:
        key = lookup_id(event_id)
        row = None
        if key is not None:
            t = await self._tables(tenant)
            row = t.events.get(key)
        if row is None:
            raise NotFound(
                f"event {event_id!r} not found",
                reason="EVENT_NOT_FOUND",
                metadata={"tenant": tenant, "event_id": event_id},
            )
        return event_from_row(_columns(row, EVENT_COLUMNS), tenant, _D)

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        keys = [k for k in (lookup_id(i) for i in event_ids) if k is not None]
        if not keys:
            return {}
        t = await self._tables(tenant)
        rows = (t.events[k] for k in dict.fromkeys(keys) if k in t.events)
        return {r["id"]: event_from_row(_columns(r, EVENT_COLUMNS), tenant, _D) for r in rows}

    async def list_events(
        self, tenant: str, filter: EventFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Event]:
        limit = page_limit(page_size)
        after = _after(page_token, "events")
        t = await self._tables(tenant)
        test = _event_test(filter)
        rows = _newest_page((r for r in t.events.values() if test(r)), "time", after, limit)
        items = [event_from_row(_columns(r, EVENT_COLUMNS), tenant, _D) for r in rows[:limit]]
        token = ""
        if len(rows) > limit:
            token = tokens.encode("events", [to_micros(items[-1].time), items[-1].id])
        return Page(items, token)

    # --- executions and attempts --------------------------------------------------------

    def _execution(self, t: _Tables, tenant: str, row: _Row, *, attempts: bool = True) -> Execution:
        execution = execution_from_row(_columns(row, EXECUTION_COLUMNS), tenant, _D)
        if attempts:
            numbered = t.attempts.get(row["id"], {})
            execution.attempts = [attempt_from_row(numbered[n], _D) for n in sorted(numbered)]
        return execution

    def _settle(self, t: _Tables, event_ids: Iterable[str]) -> None:
        """Complete or fail each event once every execution of it is final."""
        for event_id in event_ids:
            event = t.events.get(event_id)
            statuses = [t.executions[x]["status"] for x in t.by_event.get(event_id, ())]
            if event is None or not statuses or any(s not in _FINAL for s in statuses):
                continue
            ok = all(s == "succeeded" for s in statuses)
            event["status"] = (EventStatus.COMPLETED if ok else EventStatus.FAILED).value

    def _reopen(self, t: _Tables, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            if event_id in t.events:
                t.events[event_id]["status"] = EventStatus.PROCESSING.value

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

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        results: list[Exception | None] = [None] * len(changes)
        keys: list[str | None] = []
        for i, change in enumerate(changes):
            key = lookup_id(change.execution_id)
            keys.append(key)
            if key is None:
                results[i] = _execution_not_found(tenant, change.execution_id)
            elif isinstance(change, AttemptFinish) and change.status is ExecutionStatus.RUNNING:
                results[i] = InvalidArgument.field("status", "an attempt cannot finish into running")
        wanted = [k for k, r in zip(keys, results, strict=True) if k is not None and r is None]
        if len(set(wanted)) != len(wanted):
            raise Internal("record_attempts: one execution twice in a batch")
        if not wanted:
            return results
        t = await self._tables(tenant)
        now = utcnow()
        at = to_micros(now)
        # decide every change and encode what it writes first: a value JSON cannot hold fails the
        # whole batch before anything is written
        writes: list[tuple[_Row, dict[str, Any], tuple[Any, ...]]] = []
        for i, (change, key) in enumerate(zip(changes, keys, strict=True)):
            if key is None or results[i] is not None:
                continue
            row = t.executions.get(key)
            locked = None if row is None else (key, row["status"], row["lease_owner"], row["event_id"])
            refused = _fence(tenant, change, locked)
            if refused is not None:
                results[i] = refused
                continue
            assert row is not None
            if isinstance(change, AttemptStart):
                a = change.attempt
                running = dataclasses.replace(
                    a, status=ExecutionStatus.RUNNING, finished_at=None, output=None, error=None
                )
                update = {
                    "status": "running",
                    "attempt_count": max(row["attempt_count"], a.number),
                    "started_at": row["started_at"] if row["started_at"] is not None else _D.enc_time(a.started_at),
                    "next_attempt_at": None,
                    "updated_at": at,
                }
                writes.append((row, update, attempt_params(key, running, _D)))
                continue
            ended = _ended(change, now)
            final = change.status.is_final
            update = {
                "status": change.status.value,
                "output": _D.enc_json(ended.output),
                "error": _D.enc_json(error_json(ended.error)),
                "finished_at": _D.opt_time(ended.finished_at if final else None),
                "next_attempt_at": _D.opt_time(None if final else change.next_attempt_at),
                "updated_at": at,
                "attempt_count": max(row["attempt_count"], ended.number),
                "error_type": ended.error.type if ended.error is not None else "",
                "queued_at": None,
            }
            if not (change.keep_lease and not final):
                update.update(lease_owner=None, lease_expires_at=None)
            writes.append((row, update, attempt_params(key, ended, _D)))
        settle = set()
        for row, update, attempt in writes:
            row.update(update)
            t.attempts.setdefault(row["id"], {})[attempt[1]] = attempt
            if row["status"] in _FINAL and row["event_id"] is not None:
                settle.add(row["event_id"])
        self._settle(t, sorted(settle))
        return results

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _execution_not_found(tenant, execution_id)
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None:
            raise _execution_not_found(tenant, execution_id)
        return self._execution(t, tenant, row)

    async def list_executions(
        self, tenant: str, filter: ExecutionFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Execution]:
        limit = page_limit(page_size)
        after = _after(page_token, "executions")
        t = await self._tables(tenant)
        test = _execution_test(filter)
        rows = _newest_page((r for r in t.executions.values() if test(r)), "created_at", after, limit)
        items = [self._execution(t, tenant, r, attempts=False) for r in rows[:limit]]
        token = ""
        if len(rows) > limit:
            token = tokens.encode("executions", [to_micros(items[-1].created_at), items[-1].id])
        return Page(items, token)

    async def unfinished_executions(self, tenant: str, limit: int = 10_000) -> list[Execution]:
        if limit < 0:
            raise InvalidArgument.field("limit", "must not be negative")
        t = await self._tables(tenant)
        rows = sorted(
            (r for r in t.executions.values() if r["status"] in _UNFINISHED), key=lambda r: (r["created_at"], r["id"])
        )
        return [self._execution(t, tenant, r) for r in rows[:limit]]

    async def cancel_execution(self, tenant: str, execution_id: str, error: ExecutionError) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _execution_not_found(tenant, execution_id)
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None:
            raise _execution_not_found(tenant, execution_id)
        if row["status"] not in _UNFINISHED:
            raise FailedPrecondition(
                f"execution {execution_id!r} already ended ({row['status']})",
                reason="EXECUTION_FINISHED",
                metadata={"execution_id": execution_id, "status": str(row["status"])},
            )
        now = to_micros(utcnow())
        why = _D.enc_json(error_json(error))
        row.update(status="cancelled", error=why, error_type="cancelled", finished_at=now, updated_at=now)
        row["next_attempt_at"] = None
        _release(row)
        attempts = t.attempts.get(key, {})
        for number, a in list(attempts.items()):
            if a[3] == "running":
                cancelled = dict(zip(ATTEMPT_COLUMNS, a, strict=True))
                cancelled.update(status="cancelled", finished_at=now, error=why)
                attempts[number] = tuple(cancelled[c] for c in ATTEMPT_COLUMNS)
        if row["event_id"] is not None:
            self._settle(t, [row["event_id"]])
        return self._execution(t, tenant, row)

    async def requeue_execution(self, tenant: str, execution_id: str) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _execution_not_found(tenant, execution_id)
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None:
            raise _execution_not_found(tenant, execution_id)
        if row["status"] not in _RETRYABLE:
            raise FailedPrecondition(
                f"execution {execution_id!r} is {row['status']}: only failed, timed-out, cancelled or"
                " dead-lettered executions can be retried",
                reason="EXECUTION_NOT_RETRYABLE",
                metadata={"execution_id": execution_id, "status": str(row["status"])},
            )
        _requeue(row, to_micros(utcnow()))
        if row["event_id"] is not None:
            self._reopen(t, [row["event_id"]])
        return self._execution(t, tenant, row)

    async def requeue_dead_letters(self, tenant: str, filter: ExecutionFilter) -> list[Execution]:
        t = await self._tables(tenant)
        test = _execution_test(filter)
        rows = sorted(
            (r for r in t.executions.values() if r["status"] == "dead_lettered" and test(r)),
            key=lambda r: (r["created_at"], r["id"]),
        )
        now = to_micros(utcnow())
        for row in rows:
            _requeue(row, now)
        self._reopen(t, sorted({r["event_id"] for r in rows if r["event_id"] is not None}))
        return [self._execution(t, tenant, r, attempts=False) for r in rows]

    # --- leases ----------------------------------------------------------------------------

    def _lease(self, t: _Tables, tenant: str, rows: list[_Row], owner: str, until: datetime) -> list[Execution]:
        expires = _D.enc_time(until)
        for row in rows:
            row["lease_owner"], row["lease_expires_at"] = owner or None, expires
        return [self._execution(t, tenant, r) for r in sorted(rows, key=_claim_order)]

    async def claim_due(self, tenant: str, owner: str, until: datetime, limit: int) -> list[Execution]:
        if limit <= 0:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        due = [
            r
            for r in t.executions.values()
            if r["status"] in _UNFINISHED and r["mode"] != ExecutionMode.QUEUED.value and _due(r, now)
        ]
        return self._lease(t, tenant, sorted(due, key=_claim_order)[:limit], owner, until)

    async def claim(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        keys = _ids(execution_ids)
        if not keys:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        rows = [t.executions[k] for k in keys if k in t.executions]
        due = [r for r in rows if r["status"] in _UNFINISHED and _due(r, now)]
        return self._lease(t, tenant, due, owner, until)

    async def execution_states(self, tenant: str, execution_ids: Sequence[str]) -> dict[str, ExecutionState]:
        keys = _ids(execution_ids)
        if not keys:
            return {}
        t = await self._tables(tenant)
        rows = [t.executions[k] for k in keys if k in t.executions]
        return {
            r["id"]: ExecutionState(
                r["id"],
                ExecutionStatus(r["status"]),
                r["lease_owner"] or "",
                _D.dec_opt_time(r["lease_expires_at"]),
                _D.dec_opt_time(r["next_attempt_at"]),
            )
            for r in rows
        }

    async def extend_leases(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        keys = _ids(execution_ids)
        if not keys:
            return set()
        t = await self._tables(tenant)
        held = [
            t.executions[k]
            for k in keys
            if k in t.executions and _owned(t.executions[k], owner) and t.executions[k]["status"] in _UNFINISHED
        ]
        for row in held:
            row["lease_expires_at"] = _D.enc_time(until)
        return {r["id"] for r in held}

    async def defer_execution(self, tenant: str, execution_id: str, until: datetime, owner: str) -> bool:
        key = lookup_id(execution_id)
        if key is None:
            return False
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None or row["status"] not in _UNFINISHED or not _owned(row, owner):
            return False
        row.update(next_attempt_at=_D.enc_time(until), updated_at=to_micros(utcnow()))
        if row["status"] == "running":
            row["status"] = "scheduled"
        _release(row)
        return True

    async def release_leases(self, tenant: str, owner: str) -> int:
        t = await self._tables(tenant)
        held = [r for r in t.executions.values() if _owned(r, owner) and r["status"] in _UNFINISHED]
        for row in held:
            _release(row)
        return len(held)

    # --- the outbox -------------------------------------------------------------------------

    async def take_for_queue(
        self, tenant: str, limit: int, stale_before: datetime, settle_before: datetime
    ) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        t = await self._tables(tenant)
        now = to_micros(utcnow())
        stale, settle = to_micros(stale_before), to_micros(settle_before)
        due = [
            r
            for r in t.executions.values()
            if r["status"] in _UNFINISHED
            and r["mode"] == ExecutionMode.QUEUED.value
            and _due(r, now)
            and (r["queued_at"] is None or r["queued_at"] < stale)
            and (r["status"] != "pending" or r["updated_at"] < settle)
        ]
        taken = sorted(due, key=_claim_order)[:limit]
        for row in taken:
            row["queued_at"] = now
        return [(r["id"], int(r["priority"])) for r in taken]

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        keys = _ids(execution_ids)
        if not keys:
            return
        t = await self._tables(tenant)
        for key in keys:
            row = t.executions.get(key)
            if row is not None and row["status"] == "pending" and row["queued_at"] is None:
                row["queued_at"] = _D.enc_time(at)

    async def unmark_queued(self, tenant: str, execution_ids: Sequence[str]) -> None:
        keys = _ids(execution_ids)
        if not keys:
            return
        t = await self._tables(tenant)
        for key in keys:
            row = t.executions.get(key)
            if row is not None and row["status"] in _UNFINISHED:
                row["queued_at"] = None

    async def reset_queued(self, tenant: str) -> int:
        t = await self._tables(tenant)
        marked = [
            r
            for r in t.executions.values()
            if r["mode"] == ExecutionMode.QUEUED.value and r["status"] in _UNFINISHED and r["queued_at"] is not None
        ]
        for row in marked:
            row["queued_at"] = None
        return len(marked)


def _conforms(store: MemoryStore) -> Store:
    # mypy checks here that MemoryStore implements the Store protocol
    return store


__all__ = ["MemoryData", "MemoryStore"]
