"""The store port: where tenants, events, actions and executions live.

One protocol per role — ``TenantStore``, ``ActionStore``, ``EventStore``,
``ExecutionStore``, ``LeaseStore``, ``OutboxStore`` (and ``StoreLifecycle``) — and
``Store``, all of them together. Three implementations pass one contract suite
(``tests/contract``): ``SqliteStore`` (embedded default, one file per tenant),
``PostgresStore`` (one schema per tenant) and ``MemoryStore`` (in memory, the fake of
the unit tests). Every method is scoped to one tenant; none reads across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from neoactions.domain.audit import AuditEntry
from neoactions.domain.keys import ApiKey
from neoactions.domain.model import (
    JSON,
    Action,
    Attempt,
    Event,
    EventStatus,
    Execution,
    ExecutionError,
    ExecutionStatus,
    Tenant,
)
from neoactions.server.eventstore.port import EventArchive
from neoactions.server.pluginhost.port import PluginStore
from neoactions.server.workflows.rows import WorkflowStore

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    #: opaque; empty when this is the last page
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class ActionFilter:
    """Which actions a listing shows; an empty field does not filter."""

    #: only enabled (True) or only disabled (False) actions
    enabled: bool | None = None
    #: only actions whose handler has this type (``http``, ``python``, ...)
    handler_type: str = ""
    #: only actions carrying this tag
    tag: str = ""
    #: only actions whose name or description contains this text (case-insensitive)
    search: str = ""

    def accepts(self, action: Action) -> bool:
        if self.enabled is not None and action.enabled != self.enabled:
            return False
        if self.handler_type and action.handler.type != self.handler_type:
            return False
        if self.tag and self.tag not in action.tags:
            return False
        text = self.search.casefold()
        return not text or text in action.name.casefold() or text in action.description.casefold()


@dataclass(slots=True)
class EventFilter:
    #: an event-type pattern (``users.*``); empty = any
    type_pattern: str = ""
    correlation_id: str = ""
    status: EventStatus | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass(slots=True)
class ExecutionFilter:
    action_name: str = ""
    status: ExecutionStatus | None = None
    event_id: str = ""
    correlation_id: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    statuses: frozenset[ExecutionStatus] = field(default_factory=frozenset)
    #: the type of the execution's last error (``timeout``, ``ValueError``, ...)
    error_type: str = ""


@dataclass(slots=True)
class ExecutionState:
    """Where an execution stands, without its payloads (what a queue consumer needs to decide)."""

    id: str
    status: ExecutionStatus
    lease_owner: str
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(slots=True)
class AttemptStart:
    """Attempt ``attempt.number`` of an execution begins; the execution becomes ``running``."""

    execution_id: str
    attempt: Attempt
    #: fence: only while this owner holds the lease ('' = whoever holds it)
    owner: str = ""
    #: the handler type's version the execution resolved; kept once set
    handler_version: str = ""


@dataclass(slots=True)
class AttemptFinish:
    """An attempt ended and the execution moves to ``status`` (see ``Store.finish_attempt``)."""

    execution_id: str
    attempt: Attempt
    status: ExecutionStatus
    output: JSON = None
    error: ExecutionError | None = None
    next_attempt_at: datetime | None = None
    owner: str = ""
    keep_lease: bool = False


AttemptChange = AttemptStart | AttemptFinish

LEASE_LOST = "LEASE_LOST"
DUPLICATE_EVENT = "DUPLICATE_EVENT"
#: the database broke a deadlock or a serialization conflict by aborting this transaction;
#: nothing of it was written and it may simply be tried again
TRANSACTION_CONFLICT = "TRANSACTION_CONFLICT"


# The port is split by role: a collaborator of the engine asks for the role it uses (the
# lease heartbeat a ``LeaseStore``, the outbox an ``OutboxStore``, ...), and ``Store`` is
# all of them, what a store implementation provides. Every method is scoped to one tenant.
# Errors raised are from ``neoactions.domain.errors``.


class StoreLifecycle(Protocol):
    """Opening and closing a store."""

    async def open(self) -> None:
        """Connect, create the admin tenant and apply pending migrations to every tenant."""

    async def close(self) -> None: ...


class TenantStore(Protocol):
    """The tenant registry."""

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Create the tenant's schema/file and migrate it. ``AlreadyExists`` (TENANT_ALREADY_EXISTS)."""

    async def get_tenant(self, slug: str) -> Tenant:
        """``NotFound`` (TENANT_NOT_FOUND)."""

    async def list_tenants(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Tenant]: ...

    async def delete_tenant(self, slug: str) -> None:
        """Remove the tenant, all it holds and its API keys. ``NotFound`` (TENANT_NOT_FOUND);
        ``InvalidArgument`` for the admin tenant."""


class ActionStore(Protocol):
    """Actions and their versions."""

    async def create_action(self, action: Action) -> Action:
        """Store version 1 (``action.id`` is set by the caller). ``AlreadyExists`` (ACTION_ALREADY_EXISTS)."""

    async def update_action(self, action: Action, expected_version: int | None = None) -> Action:
        """Store a new version (current + 1) of ``action.name``; ``enabled`` is kept from the current
        version. ``NotFound`` (ACTION_NOT_FOUND); ``Aborted`` (ACTION_VERSION_MISMATCH) when
        ``expected_version`` is given and is not the current version."""

    async def set_action_enabled(self, tenant: str, name: str, enabled: bool) -> Action:
        """Enable or disable; a change makes a new version, no change returns the action as is."""

    async def delete_action(self, tenant: str, name: str) -> None:
        """The action stops matching and disappears from Get/List; its versions stay for history.
        ``NotFound`` (ACTION_NOT_FOUND)."""

    async def get_action(self, tenant: str, name: str, version: int = 0) -> Action:
        """The current version (``version=0``) or a given one. ``NotFound`` (ACTION_NOT_FOUND)."""

    async def get_action_version(self, tenant: str, action_id: str, version: int) -> Action:
        """A version by the action's stable id, deleted or not (executions run the version they recorded)."""

    async def list_actions(
        self,
        tenant: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
        filter: ActionFilter | None = None,
    ) -> Page[Action]:
        """Current versions of the actions not deleted (and accepted by ``filter``), ordered by name."""

    async def all_actions(self, tenant: str) -> list[Action]:
        """Every action not deleted, current versions, enabled or not (the matcher loads these)."""


class EventStore(Protocol):
    """Events, appended with the executions they matched, and their deduplication keys."""

    async def append(
        self,
        tenant: str,
        events: Sequence[Event],
        executions: Sequence[Execution],
        dedup_since: datetime | None = None,
    ) -> None:
        """Store events and executions in one transaction. An event with executions is stored as
        ``processing``, one without as ``completed``. With ``dedup_since``, each event's
        ``dedup_key()`` is recorded too; a key already recorded at or after ``dedup_since`` makes the
        whole append fail with ``AlreadyExists`` (DUPLICATE_EVENT) and store nothing.

        An execution appended ``running`` (its publisher began its first attempt, see
        ``Dispatcher.begin``) is stored with that attempt — number ``attempt_count``, started
        at ``started_at`` — as running: the same as appending it pending, then
        ``start_attempt``."""

    async def find_duplicates(self, tenant: str, keys: Sequence[str], since: datetime) -> dict[str, str]:
        """``{dedup key: event id}`` of the keys recorded at or after ``since``."""

    async def purge_dedup(self, tenant: str, before: datetime) -> int:
        """Forget dedup keys recorded before ``before``; returns how many."""

    async def get_event(self, tenant: str, event_id: str) -> Event:
        """``NotFound`` (EVENT_NOT_FOUND)."""

    async def get_events(self, tenant: str, event_ids: Sequence[str]) -> dict[str, Event]:
        """The events that exist among ``event_ids``, by id (one read for many)."""

    async def list_events(
        self, tenant: str, filter: EventFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Event]:
        """Newest first."""


class ExecutionStore(Protocol):
    """Executions and their attempts: recording attempts, reading, cancel, retry and the
    dead-letter queue."""

    async def start_attempt(self, tenant: str, execution_id: str, attempt: Attempt, owner: str = "") -> None:
        """Record attempt ``attempt.number`` as running; the execution becomes ``running``.
        ``Aborted`` (LEASE_LOST) when the execution is final or, with ``owner``, leased to another."""

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
        """Record the end of an attempt (``attempt.status``, ``finished_at``, output, error) and move
        the execution to ``status``: a final status, or ``scheduled`` with ``next_attempt_at`` for a
        retry. When the execution reaches a final status and all executions of its event are final,
        the event becomes ``completed`` (all succeeded) or ``failed``. The lease is given up unless
        ``keep_lease``; fenced like ``start_attempt``."""

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        """Apply many attempt starts and finishes, each of a different execution, in one
        transaction (a group commit): each is fenced and applied as ``start_attempt`` /
        ``finish_attempt`` would; returns, per change, ``None`` or the error that refused it
        (``NotFound``, ``Aborted`` LEASE_LOST, ``InvalidArgument``) — a refused change does not
        stop the others. An error raised (``Unavailable`` …) means none was applied."""

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        """With its attempts. ``NotFound`` (EXECUTION_NOT_FOUND)."""

    async def list_executions(
        self, tenant: str, filter: ExecutionFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Execution]:
        """Newest first, each with its attempts."""

    async def unfinished_executions(self, tenant: str, limit: int = 10_000) -> list[Execution]:
        """Executions not in a final status (pending, scheduled, running, waiting), oldest first, with attempts."""

    # --- cancel, retry and the dead-letter queue ----------------------------------------------
    async def wake_execution(
        self, tenant: str, execution_id: str, at: datetime, owner: str = "", until: datetime | None = None
    ) -> Execution:
        """Make a ``waiting`` execution due at ``at`` (whatever it waited for happened); with
        ``owner``, also lease it to ``owner`` until ``until`` (to run it there at once) unless it
        is in queued mode or another owner's lease is live — its ``lease_owner`` tells.
        ``FailedPrecondition`` (EXECUTION_NOT_WAITING) when it is not waiting."""
        ...

    async def cancel_execution(self, tenant: str, execution_id: str, error: ExecutionError) -> Execution:
        """Cancel an unfinished execution (its running attempt too). ``FailedPrecondition``
        (EXECUTION_FINISHED) when it is final."""

    async def requeue_execution(self, tenant: str, execution_id: str) -> Execution:
        """A failed, timed-out, cancelled or dead-lettered execution back to ``pending`` with a new
        attempt series. ``FailedPrecondition`` (EXECUTION_NOT_RETRYABLE) otherwise."""

    async def requeue_dead_letters(self, tenant: str, filter: ExecutionFilter) -> list[Execution]:
        """Requeue every dead-lettered execution matching ``filter`` (action, error type, created
        time range); returns them, pending again."""


class LeaseStore(Protocol):
    """Leases: durable scheduling shared by processes."""

    async def claim_due(self, tenant: str, owner: str, until: datetime, limit: int) -> list[Execution]:
        """Lease to ``owner`` until ``until`` up to ``limit`` due executions not in queued mode —
        pending, scheduled whose ``next_attempt_at`` passed, or any whose lease expired — highest
        priority first, oldest first; with their attempts. Concurrent claimers never get one twice."""

    async def claim(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> list[Execution]:
        """Lease the due, unleased ones of ``execution_ids`` (any mode) to ``owner``; with attempts."""

    async def execution_states(self, tenant: str, execution_ids: Sequence[str]) -> dict[str, ExecutionState]:
        """The states of the executions that exist among ``execution_ids``."""

    async def extend_leases(self, tenant: str, execution_ids: Sequence[str], owner: str, until: datetime) -> set[str]:
        """Extend ``owner``'s leases; returns the ids still held (the others were lost or ended)."""

    async def defer_execution(self, tenant: str, execution_id: str, until: datetime, owner: str) -> bool:
        """Flow control refused ``owner``'s next attempt: the execution is due again at ``until``,
        its lease given up, no attempt spent. ``False`` when ``owner`` no longer holds it."""

    async def release_leases(self, tenant: str, owner: str) -> int:
        """Give up every lease of ``owner`` (graceful shutdown), so others take the work at once."""


class OutboxStore(Protocol):
    """The queued-mode outbox: which executions are on the work queue."""

    async def take_for_queue(
        self, tenant: str, limit: int, stale_before: datetime, settle_before: datetime
    ) -> list[tuple[str, int]]:
        """Mark up to ``limit`` due, unleased queued-mode executions that are not on the work queue
        (or were put there before ``stale_before``) as queued now; returns ``(id, priority)``. A
        pending one is taken only if stored before ``settle_before`` (its publisher enqueues it)."""

    async def mark_queued(self, tenant: str, execution_ids: Sequence[str], at: datetime) -> None:
        """Record that pending executions were put on the work queue at ``at``. Rows another
        transaction holds are skipped (at worst the outbox enqueues one again: a duplicate)."""

    async def unmark_queued(self, tenant: str, execution_ids: Sequence[str]) -> None:
        """Undo ``mark_queued``/``take_for_queue`` (the enqueue failed): back to the outbox."""

    async def reset_queued(self, tenant: str) -> int:
        """Forget every queue mark (the queue lost its contents); returns how many."""


# --- the audit log (see neoactions.server.audit) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit entries a listing shows; an empty field does not filter."""

    #: a kind (``action.create``) or a prefix of dotted words (``action`` = every ``action.*``)
    kind: str = ""
    #: the API key id that made the change
    principal: str = ""
    #: the object changed (an action's name, a key's id, ...)
    target: str = ""
    #: entries at or after ``since`` and before ``until``
    since: datetime | None = None
    until: datetime | None = None


class AuditStore(Protocol):
    """The audit log of a tenant: appended, listed, never changed."""

    async def append_audit(self, tenant: str, entry: AuditEntry) -> AuditEntry:
        """Store ``entry`` (its id is set when empty); returns it as stored."""

    async def list_audit(
        self, tenant: str, filter: AuditFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[AuditEntry]:
        """Newest first. ``InvalidArgument`` naming ``filter.kind`` for a kind that is not dotted words."""


# --- API keys (see neoactions.server.keys) ----------------------------------------------------


class KeyStore(Protocol):
    """Every tenant's API keys, kept with the admin tenant: a call is authenticated before its
    tenant is known. Only a token's hash is stored."""

    async def create_api_key(self, key: ApiKey, token_hash: str, *, only_if_none: bool = False) -> bool:
        """Store ``key``; with ``only_if_none``, only when no key exists at all (the bootstrap
        key: several processes may start at once). Returns whether it was stored."""

    async def get_api_key(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The key and its token hash, or ``None``."""

    async def list_api_keys(
        self, tenant: str, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[ApiKey]:
        """The keys of ``tenant`` ("" for every tenant), oldest first."""

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey:
        """Mark the key revoked (once; revoking again keeps the first time). ``NotFound``."""

    async def touch_api_keys(self, used: dict[str, datetime]) -> None:
        """Record when keys were last used (ids that no longer exist are skipped)."""


# --- secrets (see neoactions.server.secrets) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """A secret as stored: its value sealed (``neoactions.server.secrets.crypto``), never in clear."""

    name: str
    ciphertext: bytes
    created_at: datetime
    updated_at: datetime
    #: 1 when set first; every later set adds one
    version: int
    #: the API key id that first set it
    created_by: str = ""


class SecretStore(Protocol):
    """A tenant's sealed secrets, by name."""

    async def put_secret(self, tenant: str, name: str, ciphertext: bytes, by: str, at: datetime) -> StoredSecret:
        """Store a new secret (version 1, created by ``by``) or a new value of one (version + 1)."""

    async def get_secrets(self, tenant: str, names: Sequence[str]) -> dict[str, StoredSecret]:
        """The secrets that exist among ``names``, by name (one read for many)."""

    async def list_secrets(self, tenant: str) -> list[StoredSecret]:
        """Every secret of ``tenant``, ordered by name."""

    async def delete_secret(self, tenant: str, name: str) -> None:
        """``NotFound`` (SECRET_NOT_FOUND)."""

    async def reseal_secrets(self, tenant: str, changes: Sequence[tuple[str, bytes, bytes]]) -> int:
        """Replace ciphertexts, ``(name, old, new)`` each, where the stored one is still ``old``
        (a master-key rotation: the value, version and times stay); returns how many."""


# --- stats (see neoactions.server.telemetry.stats) ---------------------------------------------

#: the most ended executions one stats query reads (the newest); beyond, stats are over these
STATS_MAX_SAMPLES = 100_000


@dataclass(frozen=True, slots=True)
class ExecutionSample:
    """An execution that ended: what action stats and health are computed from."""

    action_name: str
    status: ExecutionStatus
    finished_at: datetime
    #: seconds from its first start to its end (``None``: it never started)
    duration_seconds: float | None
    error: ExecutionError | None


class StatsStore(Protocol):
    """What the stats of a tenant's actions are computed from."""

    async def execution_samples(
        self,
        tenant: str,
        since: datetime,
        until: datetime,
        action_name: str = "",
        limit: int = STATS_MAX_SAMPLES,
    ) -> list[ExecutionSample]:
        """Executions that reached a final status with ``since <= finished_at < until`` (of
        action ``action_name`` when given), newest first, at most ``limit``."""


class Store(
    StoreLifecycle,
    TenantStore,
    ActionStore,
    EventStore,
    ExecutionStore,
    LeaseStore,
    OutboxStore,
    AuditStore,
    KeyStore,
    SecretStore,
    EventArchive,
    PluginStore,
    WorkflowStore,
    StatsStore,
    Protocol,
):
    """Persistence for every tenant: every role at once (what ``SqliteStore``,
    ``PostgresStore`` and ``MemoryStore`` implement)."""


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DUPLICATE_EVENT",
    "LEASE_LOST",
    "MAX_PAGE_SIZE",
    "STATS_MAX_SAMPLES",
    "ActionStore",
    "AttemptChange",
    "AttemptFinish",
    "AttemptStart",
    "AuditFilter",
    "AuditStore",
    "EventFilter",
    "EventStore",
    "ExecutionFilter",
    "ExecutionSample",
    "ExecutionState",
    "ExecutionStore",
    "KeyStore",
    "LeaseStore",
    "OutboxStore",
    "Page",
    "SecretStore",
    "StatsStore",
    "Store",
    "StoreLifecycle",
    "StoredSecret",
    "TenantStore",
]
