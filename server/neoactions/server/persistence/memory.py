"""``MemoryStore``: every role of the ``Store`` port in memory, the fake of the unit tests.

It passes the same contract suite as the SQL stores (``tests/contract``) and keeps the
rows the embedded store would write — times as microseconds, JSON as text, canonical
ids — built and read back by the same conversions (:mod:`.codec`), so what comes out
of it equals what comes out of ``SqliteStore``. Each call is one transaction: it
yields to the loop once (a round trip), then reads and writes without awaiting, so no
other call sees it half done; a call that fails writes nothing.

Several stores may share one :class:`MemoryData` (several processes on one database).
The tables are in :mod:`.memory_tables`; leases, the outbox, cancel and requeue in
:mod:`.memory_leases`.
Nothing is durable: it is not a store to run the server on, and ``open_store`` never
returns it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from neoactions.domain.errors import (
    Aborted,
    AlreadyExists,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Event,
    EventStatus,
    Execution,
    ExecutionStatus,
    Tenant,
    utcnow,
)
from neoactions.server.persistence import tokens
from neoactions.server.persistence.codec import (
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    action_from_row,
    action_not_found,
    as_utc,
    attempt_params,
    canonical_id,
    check_new_slug,
    check_tenant,
    error_json,
    event_from_row,
    event_params,
    execution_params,
    is_slug,
    lookup_id,
    page_limit,
    tenant_from_row,
    tenant_not_found,
    to_micros,
)
from neoactions.server.persistence.memory_audit import MemoryAudit
from neoactions.server.persistence.memory_eventstore import MemoryEventArchive
from neoactions.server.persistence.memory_keys import MemoryKeys
from neoactions.server.persistence.memory_leases import MemoryLeases
from neoactions.server.persistence.memory_plugins import MemoryPlugins
from neoactions.server.persistence.memory_secrets import MemorySecrets
from neoactions.server.persistence.memory_stats import MemoryStats
from neoactions.server.persistence.memory_tables import (
    DIALECT,
    FINAL,
    UNFINISHED,
    ActionRow,
    MemoryData,
    Row,
    Tables,
    Version,
    event_test,
    execution_test,
    newest_page,
    page_after,
    values_of,
)
from neoactions.server.persistence.memory_workflows import MemoryWorkflows
from neoactions.server.persistence.shortcuts import AttemptShortcuts
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
    Page,
    Store,
)


class MemoryStore(
    MemoryStats,
    MemoryWorkflows,
    MemoryEventArchive,
    MemoryLeases,
    MemoryAudit,
    MemoryKeys,
    MemorySecrets,
    MemoryPlugins,
    AttemptShortcuts,
):
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
            self.data.tables[ADMIN_TENANT] = Tables()
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def _round_trip(self) -> None:
        """Where a database call would wait: other tasks run; then the call runs whole."""
        await asyncio.sleep(0)
        if not self._open:
            raise Unavailable("the in-memory store is not open")

    async def _tables(self, tenant: str) -> Tables:
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
        self.data.tables[created.slug] = Tables()
        return created

    async def get_tenant(self, slug: str) -> Tenant:
        if not is_slug(slug):
            raise tenant_not_found(slug)
        await self._round_trip()
        row = self.data.tenants.get(slug)
        if row is None:
            raise tenant_not_found(slug)
        return tenant_from_row(row, DIALECT)

    async def list_tenants(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Tenant]:
        limit = page_limit(page_size)
        after = tokens.decode("tenants", page_token, (str,))
        await self._round_trip()
        slugs = sorted(s for s in self.data.tenants if s > (str(after[0]) if after else ""))[: limit + 1]
        items = [tenant_from_row(self.data.tenants[s], DIALECT) for s in slugs[:limit]]
        more = len(slugs) > limit
        return Page(items, tokens.encode("tenants", [items[-1].slug]) if more else "")

    async def delete_tenant(self, slug: str) -> None:
        if slug == ADMIN_TENANT:
            raise InvalidArgument.field("name", "the admin tenant cannot be deleted", reason="INVALID_TENANT_ID")
        await self._round_trip()
        if slug not in self.data.tenants:
            raise tenant_not_found(slug)
        del self.data.tenants[slug]
        self.data.tables.pop(slug, None)
        for key_id in [k for k, (key, _) in self.data.api_keys.items() if key.tenant == slug]:
            del self.data.api_keys[key_id]

    # --- actions ---------------------------------------------------------------------

    def _action(self, t: Tables, tenant: str, action: ActionRow, version: int) -> Action:
        v = t.versions[(action.id, version)]
        return action_from_row(
            (action.id, action.name, action.created_at, version, v.spec, v.enabled, v.created_at), tenant, DIALECT
        )

    async def create_action(self, action: Action) -> Action:
        action_id = canonical_id(action.id, "action.id") if action.id else new_id()
        created = as_utc(action.created_at)
        spec = DIALECT.enc_json(action.spec())
        t = await self._tables(action.tenant)
        if action_id in t.actions or t.live_action(action.name) is not None:
            raise AlreadyExists(
                f"action {action.name!r} already exists",
                reason="ACTION_ALREADY_EXISTS",
                metadata={"tenant": action.tenant, "action": action.name},
            )
        at = to_micros(created)
        t.actions[action_id] = ActionRow(action_id, action.name, 1, action.enabled, False, at, at)
        t.versions[(action_id, 1)] = Version(spec, action.enabled, at)
        return dataclasses.replace(action, id=action_id, version=1, created_at=created, updated_at=created)

    def _new_version(self, t: Tables, tenant: str, row: ActionRow, spec: str, enabled: bool) -> Action:
        now = to_micros(utcnow())
        version = row.current_version + 1
        t.versions[(row.id, version)] = Version(spec, enabled, now)
        row.current_version, row.enabled, row.updated_at = version, enabled, now
        return self._action(t, tenant, row, version)

    async def update_action(self, action: Action, expected_version: int | None = None) -> Action:
        spec = DIALECT.enc_json(action.spec())
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
        event_rows: list[Row] = []
        dedup_rows: list[tuple[str, str]] = []
        for e in events:
            check_tenant(e.tenant, tenant, "event.tenant")
            event_id = canonical_id(e.id, "event.id")
            status = EventStatus.PROCESSING if event_id in fanned_out else EventStatus.COMPLETED
            event_rows.append(dict(zip(EVENT_COLUMNS, event_params(e, status, DIALECT), strict=True)))
            key = e.dedup_key() if dedup_since is not None else ""
            if key:
                dedup_rows.append((key, event_id))
        execution_rows: list[Row] = []
        attempt_rows: list[tuple[Any, ...]] = []
        for x in executions:
            check_tenant(x.tenant, tenant, "execution.tenant")
            row = dict(zip(EXECUTION_COLUMNS, execution_params(x, DIALECT), strict=True))
            row["queued_at"] = None
            execution_rows.append(row)
            if x.status is ExecutionStatus.RUNNING:
                attempt_rows.append(attempt_params(row["id"], _begun(x), DIALECT))
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
        return event_from_row(values_of(row, EVENT_COLUMNS), tenant, DIALECT)

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        keys = [k for k in (lookup_id(i) for i in event_ids) if k is not None]
        if not keys:
            return {}
        t = await self._tables(tenant)
        rows = (t.events[k] for k in dict.fromkeys(keys) if k in t.events)
        return {r["id"]: event_from_row(values_of(r, EVENT_COLUMNS), tenant, DIALECT) for r in rows}

    async def list_events(
        self, tenant: str, filter: EventFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Event]:
        limit = page_limit(page_size)
        after = page_after(page_token, "events")
        t = await self._tables(tenant)
        test = event_test(filter)
        rows = newest_page((r for r in t.events.values() if test(r)), "time", after, limit)
        items = [event_from_row(values_of(r, EVENT_COLUMNS), tenant, DIALECT) for r in rows[:limit]]
        token = ""
        if len(rows) > limit:
            token = tokens.encode("events", [to_micros(items[-1].time), items[-1].id])
        return Page(items, token)

    # --- executions and attempts --------------------------------------------------------

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
        writes: list[tuple[Row, dict[str, Any], tuple[Any, ...]]] = []
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
                a, started = change.attempt, row["started_at"]
                running = dataclasses.replace(
                    a, status=ExecutionStatus.RUNNING, finished_at=None, output=None, error=None
                )
                update = {
                    "status": "running",
                    "attempt_count": max(row["attempt_count"], a.number),
                    "started_at": started if started is not None else DIALECT.enc_time(a.started_at),
                    "next_attempt_at": None,
                    "updated_at": at,
                    "handler_version": row["handler_version"] or change.handler_version,
                }
                writes.append((row, update, attempt_params(key, running, DIALECT)))
                continue
            ended = _ended(change, now)
            final = change.status.is_final
            update = {
                "status": change.status.value,
                "output": DIALECT.enc_json(ended.output),
                "error": DIALECT.enc_json(error_json(ended.error)),
                "finished_at": DIALECT.opt_time(ended.finished_at if final else None),
                "next_attempt_at": DIALECT.opt_time(None if final else change.next_attempt_at),
                "updated_at": at,
                "attempt_count": max(row["attempt_count"], ended.number),
                "error_type": ended.error.type if ended.error is not None else "",
                "queued_at": None,
            }
            if not (change.keep_lease and not final):
                update.update(lease_owner=None, lease_expires_at=None)
            writes.append((row, update, attempt_params(key, ended, DIALECT)))
        settle = set()
        for row, update, attempt in writes:
            row.update(update)
            t.attempts.setdefault(row["id"], {})[attempt[1]] = attempt
            if row["status"] in FINAL and row["event_id"] is not None:
                settle.add(row["event_id"])
        t.settle(sorted(settle))
        return results

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        key = lookup_id(execution_id)
        if key is None:
            raise _execution_not_found(tenant, execution_id)
        t = await self._tables(tenant)
        row = t.executions.get(key)
        if row is None:
            raise _execution_not_found(tenant, execution_id)
        return t.execution(tenant, row)

    async def list_executions(
        self, tenant: str, filter: ExecutionFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Execution]:
        limit = page_limit(page_size)
        after = page_after(page_token, "executions")
        t = await self._tables(tenant)
        test = execution_test(filter)
        rows = newest_page((r for r in t.executions.values() if test(r)), "created_at", after, limit)
        items = [t.execution(tenant, r) for r in rows[:limit]]
        token = ""
        if len(rows) > limit:
            token = tokens.encode("executions", [to_micros(items[-1].created_at), items[-1].id])
        return Page(items, token)

    async def unfinished_executions(self, tenant: str, limit: int = 10_000) -> list[Execution]:
        if limit < 0:
            raise InvalidArgument.field("limit", "must not be negative")
        t = await self._tables(tenant)
        rows = sorted(
            (r for r in t.executions.values() if r["status"] in UNFINISHED), key=lambda r: (r["created_at"], r["id"])
        )
        return [t.execution(tenant, r) for r in rows[:limit]]


def _conforms(store: MemoryStore) -> Store:
    # mypy checks here that MemoryStore implements the Store protocol
    return store


__all__ = ["MemoryData", "MemoryStore"]
