"""The store logic both SQL stores share, over a tiny transaction interface.

:class:`SqlStore` implements every ``Store`` method in terms of :class:`Tx` (fetch /
execute / executemany inside one transaction) and :class:`Statements`. A concrete
store provides ``_tx`` — which resolves the tenant to its file or schema, begins and
ends the transaction and translates driver errors — plus opening, closing and tenant
creation, which differ too much to share.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from neoactions.domain.errors import Aborted, AlreadyExists, Internal, InvalidArgument, NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    ADMIN_TENANT,
    UNFINISHED_STATUSES,
    Action,
    Attempt,
    Event,
    EventStatus,
    Execution,
    ExecutionStatus,
    Tenant,
    utcnow,
)
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import (
    Dialect,
    Row,
    UniqueViolation,
    action_from_row,
    action_not_found,
    as_utc,
    attempt_from_row,
    attempt_params,
    canonical_id,
    check_tenant,
    dec_id,
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
from neoactions.server.persistence.filters import events_query, executions_query
from neoactions.server.persistence.leases import LeaseMixin
from neoactions.server.persistence.shortcuts import AttemptShortcuts
from neoactions.server.persistence.sql_audit import SqlAuditMixin
from neoactions.server.persistence.sql_eventstore import SqlEventArchive
from neoactions.server.persistence.sql_keys import SqlKeysMixin
from neoactions.server.persistence.sql_plugins import SqlPluginsMixin
from neoactions.server.persistence.sql_secrets import SqlSecretsMixin
from neoactions.server.persistence.sql_stats import SqlStatsMixin
from neoactions.server.persistence.sql_workflows import SqlWorkflowsMixin
from neoactions.server.persistence.statements import Statements
from neoactions.server.store import (
    DEFAULT_PAGE_SIZE,
    DUPLICATE_EVENT,
    LEASE_LOST,
    ActionFilter,
    AttemptChange,
    AttemptFinish,
    AttemptStart,
    EventFilter,
    ExecutionFilter,
    Page,
)

_UNFINISHED = frozenset(s.value for s in UNFINISHED_STATUSES)


class Tx(Protocol):
    """One open transaction. SQL uses ``$n`` parameters; unique-key failures raise ``UniqueViolation``."""

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def _execution_not_found(tenant: str, execution_id: str) -> NotFound:
    return NotFound(
        f"execution {execution_id!r} not found",
        reason="EXECUTION_NOT_FOUND",
        metadata={"tenant": tenant, "execution_id": execution_id},
    )


def _fence(tenant: str, change: AttemptChange, row: Row | None) -> Exception | None:
    """Why ``change`` may not be applied to the locked execution ``row``, or ``None``."""
    if row is None:
        return _execution_not_found(tenant, change.execution_id)
    status, owner = row[1], row[2]
    if status in _UNFINISHED and (not change.owner or owner == change.owner):
        return None
    return Aborted(
        f"execution {change.execution_id!r} is {status} and leased to {owner or 'nobody'}:"
        " not this attempt's to record",
        reason=LEASE_LOST,
        metadata={"tenant": tenant, "execution_id": change.execution_id},
    )


async def _insert(
    tx: Tx,
    q: Statements,
    events: Sequence[Sequence[Any]],
    executions: Sequence[Sequence[Any]],
    attempts: Sequence[Sequence[Any]],
) -> None:
    try:
        if events:
            await tx.executemany(q.event_insert, events)
        if executions:
            await tx.executemany(q.execution_insert, executions)
        if attempts:
            await tx.executemany(q.attempt_upsert, attempts)
    except UniqueViolation as exc:
        raise AlreadyExists(f"append: an id is already stored ({exc})") from None


def _begun(x: Execution) -> Attempt:
    """The running attempt of an execution appended ``running``."""
    if x.attempt_count < 1 or x.started_at is None:
        raise InvalidArgument.field("execution.status", "a running execution needs its attempt_count and started_at")
    return Attempt(
        number=x.attempt_count, runner=x.handler_type, status=ExecutionStatus.RUNNING, started_at=x.started_at
    )


def _start_params(key: str, change: AttemptStart, now: datetime, d: Dialect) -> tuple[Any, ...]:
    a = change.attempt
    return (key, a.number, d.enc_time(a.started_at), d.enc_time(now), change.owner, change.handler_version)


def _ended(change: AttemptFinish, now: datetime) -> Attempt:
    """The attempt as it is stored once it ended."""
    attempt = change.attempt
    status = attempt.status
    if not status.is_final and status is not ExecutionStatus.WAITING:
        # the caller did not classify the attempt: it ended the execution, or it failed into a retry
        status = change.status if change.status.is_final else ExecutionStatus.FAILED
    return dataclasses.replace(
        attempt,
        status=status,
        finished_at=attempt.finished_at or now,
        output=attempt.output if change.output is None else change.output,
        error=attempt.error if change.error is None else change.error,
    )


def _finish_params(key: str, change: AttemptFinish, ended: Attempt, now: datetime, d: Dialect) -> tuple[Any, ...]:
    final = change.status.is_final
    return (
        key,
        change.status.value,
        d.enc_json(ended.output),
        d.enc_json(error_json(ended.error)),
        d.opt_time(ended.finished_at if final else None),
        d.opt_time(None if final else change.next_attempt_at),
        d.enc_time(now),
        ended.number,
        ended.error.type if ended.error is not None else "",
        change.keep_lease and not final,
        change.owner,
    )


class SqlStore(
    SqlStatsMixin,
    SqlWorkflowsMixin,
    SqlEventArchive,
    LeaseMixin,
    SqlAuditMixin,
    SqlKeysMixin,
    SqlSecretsMixin,
    SqlPluginsMixin,
    AttemptShortcuts,
    ABC,
):
    """Every ``Store`` method, given a transaction per call."""

    dialect: Dialect

    @abstractmethod
    def _tx(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        """A transaction on ``tenant``'s data; ``NotFound`` (TENANT_NOT_FOUND) for an unknown tenant."""

    def _one(self, tenant: str, *, write: bool) -> AbstractAsyncContextManager[tuple[Tx, Statements]]:
        """For statements that need no transaction around them — one statement (atomic, one
        snapshot by itself), or a write and then reads that do not need its snapshot — so a
        store may run each on its own (saving the begin and commit)."""
        return self._tx(tenant, write=write)

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Register the tenant and create its file or schema, migrated."""

    @abstractmethod
    async def delete_tenant(self, slug: str) -> None:
        """Unregister the tenant, remove its file or schema and its API keys."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- tenants ---------------------------------------------------------------

    async def get_tenant(self, slug: str) -> Tenant:
        if not is_slug(slug):
            raise tenant_not_found(slug)
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            row = await tx.fetchrow(q.tenant_get, slug)
        if row is None:
            raise tenant_not_found(slug)
        return tenant_from_row(row, self.dialect)

    async def list_tenants(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Tenant]:
        limit = page_limit(page_size)
        after = tokens.decode("tenants", page_token, (str,))
        async with self._tx(ADMIN_TENANT, write=False) as (tx, q):
            rows = await tx.fetch(q.tenant_page, after[0] if after else "", limit + 1)
        items = [tenant_from_row(r, self.dialect) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items, tokens.encode("tenants", [items[-1].slug]) if more else "")

    # --- actions ---------------------------------------------------------------

    async def create_action(self, action: Action) -> Action:
        d = self.dialect
        action_id = canonical_id(action.id, "action.id") if action.id else new_id()
        created = as_utc(action.created_at)
        async with self._tx(action.tenant, write=True) as (tx, q):
            try:
                await tx.execute(q.action_insert, action_id, action.name, action.enabled, d.enc_time(created))
            except UniqueViolation:
                raise AlreadyExists(
                    f"action {action.name!r} already exists",
                    reason="ACTION_ALREADY_EXISTS",
                    metadata={"tenant": action.tenant, "action": action.name},
                ) from None
            await tx.execute(
                q.version_insert, action_id, 1, d.enc_json(action.spec()), action.enabled, d.enc_time(created)
            )
        return dataclasses.replace(action, id=action_id, version=1, created_at=created, updated_at=created)

    async def update_action(self, action: Action, expected_version: int | None = None) -> Action:
        d = self.dialect
        async with self._tx(action.tenant, write=True) as (tx, q):
            row = await tx.fetchrow(q.action_lock, action.name)
            if row is None:
                raise action_not_found(action.tenant, action.name)
            current = int(row[1])
            if expected_version is not None and expected_version != current:
                raise Aborted(
                    f"action {action.name!r} is at version {current}, not {expected_version}",
                    reason="ACTION_VERSION_MISMATCH",
                    metadata={"current_version": str(current)},
                )
            return await self._new_version(tx, q, action.tenant, row, d.enc_json(action.spec()), bool(row[2]))

    async def set_action_enabled(self, tenant: str, name: str, enabled: bool) -> Action:
        d = self.dialect
        async with self._tx(tenant, write=True) as (tx, q):
            row = await tx.fetchrow(q.action_lock, name)
            if row is None:
                raise action_not_found(tenant, name)
            if bool(row[2]) == enabled:
                same = await tx.fetchrow(q.action_by_id, row[0], int(row[1]))
                return action_from_row(same, tenant, d)
            spec = await tx.fetchrow(q.version_spec, row[0], int(row[1]))
            assert spec is not None  # a current version always exists
            return await self._new_version(tx, q, tenant, row, d.enc_json(d.dec_json(spec[0])), enabled)

    async def _new_version(self, tx: Tx, q: Statements, tenant: str, locked: Row, spec: Any, enabled: bool) -> Action:
        """Store version current + 1 of the action in row ``locked`` (id, current_version, enabled)."""
        d = self.dialect
        now = d.enc_time(utcnow())
        version = int(locked[1]) + 1
        await tx.execute(q.version_insert, locked[0], version, spec, enabled, now)
        await tx.execute(q.action_bump, locked[0], version, enabled, now)
        row = await tx.fetchrow(q.action_by_id, locked[0], version)
        return action_from_row(row, tenant, d)

    async def delete_action(self, tenant: str, name: str) -> None:
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.action_delete, name, self.dialect.enc_time(utcnow()))
        if not rows:
            raise action_not_found(tenant, name)

    async def get_action(self, tenant: str, name: str, version: int = 0) -> Action:
        async with self._tx(tenant, write=False) as (tx, q):
            row = await tx.fetchrow(q.action_by_name, name, version)
        if row is None:
            raise action_not_found(tenant, name if not version else f"{name}@{version}")
        return action_from_row(row, tenant, self.dialect)

    async def get_action_version(self, tenant: str, action_id: str, version: int) -> Action:
        key = lookup_id(action_id)
        row = None
        if key is not None:
            async with self._tx(tenant, write=False) as (tx, q):
                row = await tx.fetchrow(q.action_by_id, key, version)
        if row is None:
            raise action_not_found(tenant, f"{action_id}@{version}")
        return action_from_row(row, tenant, self.dialect)

    async def list_actions(
        self,
        tenant: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
        filter: ActionFilter | None = None,
    ) -> Page[Action]:
        limit = page_limit(page_size)
        after = tokens.decode("actions", page_token, (str,))
        cursor = after[0] if after else ""
        items: list[Action] = []
        more = False
        async with self._tx(tenant, write=False) as (tx, q):
            # the filters look into the stored spec (JSON): pages of rows are read until a page
            # of matching actions is full (one read without a filter)
            while not more:
                rows = await tx.fetch(q.action_page, cursor, limit + 1)
                for row in rows:
                    action = action_from_row(row, tenant, self.dialect)
                    cursor = action.name
                    if filter is not None and not filter.accepts(action):
                        continue
                    if len(items) == limit:
                        more = True
                        break
                    items.append(action)
                if len(rows) <= limit:
                    break
        return Page(items, tokens.encode("actions", [items[-1].name]) if more else "")

    async def all_actions(self, tenant: str) -> list[Action]:
        """Ordered by creation (the matcher's tie-break order)."""
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(q.action_all)
        return [action_from_row(r, tenant, self.dialect) for r in rows]

    # --- events and executions ----------------------------------------------------

    async def append(
        self,
        tenant: str,
        events: Sequence[Event],
        executions: Sequence[Execution],
        dedup_since: datetime | None = None,
    ) -> None:
        d = self.dialect
        fanned_out = {canonical_id(x.event_id, "execution.event_id") for x in executions if x.event_id}
        event_rows = []
        dedup_rows = []
        now = utcnow()
        for e in events:
            check_tenant(e.tenant, tenant, "event.tenant")
            has_work = canonical_id(e.id, "event.id") in fanned_out
            event_rows.append(event_params(e, EventStatus.PROCESSING if has_work else EventStatus.COMPLETED, d))
            key = e.dedup_key() if dedup_since is not None else ""
            if key:
                dedup_rows.append((key, canonical_id(e.id, "event.id"), d.enc_time(now)))
        execution_rows = []
        attempt_rows = []
        for x in executions:
            check_tenant(x.tenant, tenant, "execution.tenant")
            execution_rows.append(execution_params(x, d))
            if x.status is ExecutionStatus.RUNNING:
                attempt_rows.append(attempt_params(canonical_id(x.id, "execution.id"), _begun(x), d))
        if not event_rows and not execution_rows:
            return
        if not dedup_rows:
            await self._insert_rows(tenant, event_rows, execution_rows, attempt_rows)
            return
        assert dedup_since is not None  # keys are only recorded with a window
        async with self._tx(tenant, write=True) as (tx, q):
            # a key outside the window no longer counts: forget it so the insert below succeeds
            keys = [r[0] for r in dedup_rows]
            await tx.execute(q.dedup_expire_keys, d.enc_ids(keys), d.enc_time(dedup_since))
            try:
                await tx.executemany(q.dedup_insert, dedup_rows)
            except UniqueViolation:
                raise AlreadyExists(
                    "an event with the same idempotency key was accepted meanwhile", reason=DUPLICATE_EVENT
                ) from None
            await _insert(tx, q, event_rows, execution_rows, attempt_rows)

    async def _insert_rows(
        self,
        tenant: str,
        events: Sequence[Sequence[Any]],
        executions: Sequence[Sequence[Any]],
        attempts: Sequence[Sequence[Any]],
    ) -> None:
        """Insert an append's rows, all or none (a store may do it in fewer round trips)."""
        async with self._tx(tenant, write=True) as (tx, q):
            await _insert(tx, q, events, executions, attempts)

    async def find_duplicates(self, tenant: str, keys: Sequence[str], since: datetime) -> dict[str, str]:
        if not keys:
            return {}
        d = self.dialect
        async with self._one(tenant, write=False) as (tx, q):
            rows = await tx.fetch(q.dedup_find, d.enc_ids(list(keys)), d.enc_time(since))
        return {str(r[0]): dec_id(r[1]) for r in rows}

    async def purge_dedup(self, tenant: str, before: datetime) -> int:
        async with self._tx(tenant, write=True) as (tx, q):
            rows = await tx.fetch(q.dedup_purge, self.dialect.enc_time(before))
        return len(rows)

    async def get_event(self, tenant: str, event_id: str) -> Event:
        key = lookup_id(event_id)
        row = None
        if key is not None:
            async with self._tx(tenant, write=False) as (tx, q):
                row = await tx.fetchrow(q.event_get, key)
        if row is None:
            raise NotFound(
                f"event {event_id!r} not found",
                reason="EVENT_NOT_FOUND",
                metadata={"tenant": tenant, "event_id": event_id},
            )
        return event_from_row(row, tenant, self.dialect)

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        keys = [k for k in (lookup_id(i) for i in event_ids) if k is not None]
        if not keys:
            return {}
        async with self._one(tenant, write=False) as (tx, q):
            rows = await tx.fetch(q.event_get_many, self.dialect.enc_ids(keys))
        events = (event_from_row(r, tenant, self.dialect) for r in rows)
        return {e.id: e for e in events}

    async def list_events(
        self, tenant: str, filter: EventFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Event]:
        limit = page_limit(page_size)
        after = tokens.decode("events", page_token, (int, str))
        async with self._tx(tenant, write=False) as (tx, q):
            sql, params = events_query(q.prefix, self.dialect, filter, after, limit + 1)
            rows = await tx.fetch(sql, *params)
        items = [event_from_row(r, tenant, self.dialect) for r in rows[:limit]]
        token = ""
        if len(rows) > limit:
            token = tokens.encode("events", [to_micros(items[-1].time), items[-1].id])
        return Page(items, token)

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        d = self.dialect
        now = utcnow()
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
        starts: list[Sequence[Any]] = []
        finishes: list[Sequence[Any]] = []
        attempts: list[Sequence[Any]] = []
        settle: set[str] = set()
        async with self._tx(tenant, write=True) as (tx, q):
            # lock the rows first (in id order), then decide every change against what they hold
            locked = {dec_id(r[0]): r for r in await tx.fetch(q.execution_lock_many, d.enc_ids(sorted(wanted)))}
            for i, (change, key) in enumerate(zip(changes, keys, strict=True)):
                if key is None or results[i] is not None:
                    continue
                row = locked.get(key)
                refused = _fence(tenant, change, row)
                if refused is not None:
                    results[i] = refused
                    continue
                assert row is not None
                if isinstance(change, AttemptStart):
                    starts.append(_start_params(key, change, now, d))
                    running = dataclasses.replace(
                        change.attempt, status=ExecutionStatus.RUNNING, finished_at=None, output=None, error=None
                    )
                    attempts.append(attempt_params(key, running, d))
                    continue
                ended = _ended(change, now)
                finishes.append(_finish_params(key, change, ended, now, d))
                attempts.append(attempt_params(key, ended, d))
                if change.status.is_final and row[3] is not None:
                    settle.add(dec_id(row[3]))
            if starts:
                await tx.executemany(q.execution_start, starts)
            if finishes:
                await tx.executemany(q.execution_finish, finishes)
            if attempts:
                await tx.executemany(q.attempt_upsert, attempts)
            if settle:
                await self._settle_events(tx, q, sorted(settle))
        return results

    async def _settle_event(self, tx: Tx, q: Statements, event_id: str) -> None:
        await self._settle_events(tx, q, [event_id])

    async def _settle_events(self, tx: Tx, q: Statements, event_ids: Sequence[str]) -> None:
        """Complete or fail each event once every execution of it is final."""
        # Lock the events first: two executions of one event finishing at once in separate
        # transactions would each see the other unfinished and neither settle the event.
        d = self.dialect
        await tx.fetch(q.event_lock_many, d.enc_ids(event_ids))
        settled = []
        for event_id, unfinished, unsucceeded in await tx.fetch(q.event_outcomes, d.enc_ids(event_ids)):
            if int(unfinished) == 0:
                status = EventStatus.COMPLETED if int(unsucceeded) == 0 else EventStatus.FAILED
                settled.append((event_id, status.value))
        if settled:
            await tx.executemany(q.event_set_status, settled)

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _execution_not_found(tenant, execution_id)
        async with self._tx(tenant, write=False) as (tx, q):
            row = await tx.fetchrow(q.execution_get, key)
            if row is None:
                raise _execution_not_found(tenant, execution_id)
            attempts = await tx.fetch(q.attempts_of, key)
        execution = execution_from_row(row, tenant, self.dialect)
        execution.attempts = [attempt_from_row(a, self.dialect) for a in attempts]
        return execution

    async def list_executions(
        self, tenant: str, filter: ExecutionFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Execution]:
        limit = page_limit(page_size)
        after = tokens.decode("executions", page_token, (int, str))
        d = self.dialect
        async with self._tx(tenant, write=False) as (tx, q):
            sql, params = executions_query(q.prefix, d, filter, after, limit + 1)
            rows = await tx.fetch(sql, *params)
            items = [execution_from_row(r, tenant, d) for r in rows[:limit]]
            # a listed execution carries its attempts, as a fetched one does (one more read)
            tried = {x.id: x for x in items if x.attempt_count > 0}
            if tried:
                for a in await tx.fetch(q.attempts_of_ids, d.enc_ids(list(tried))):
                    tried[dec_id(a[0])].attempts.append(attempt_from_row(a, d))
        token = ""
        if len(rows) > limit:
            token = tokens.encode("executions", [to_micros(items[-1].created_at), items[-1].id])
        return Page(items, token)

    async def unfinished_executions(self, tenant: str, limit: int = 10_000) -> list[Execution]:
        if limit < 0:
            raise InvalidArgument.field("limit", "must not be negative")
        async with self._tx(tenant, write=False) as (tx, q):
            rows = await tx.fetch(q.execution_unfinished, limit)
            attempt_rows = await tx.fetch(q.attempts_unfinished, limit) if rows else []
        executions = [execution_from_row(r, tenant, self.dialect) for r in rows]
        by_id = {x.id: x for x in executions}
        for a in attempt_rows:
            owner = by_id.get(dec_id(a[0]))
            if owner is not None:
                owner.attempts.append(attempt_from_row(a, self.dialect))
        return executions


__all__ = ["SqlStore", "Tx"]
