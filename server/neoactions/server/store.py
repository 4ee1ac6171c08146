"""The store port: where tenants, events, actions and executions live.

Two implementations pass one contract suite (``tests/contract``):
``SqliteStore`` (embedded default, one file per tenant) and ``PostgresStore``
(one schema per tenant). Every method is scoped to one tenant; none reads
across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from neoactions.server.model import (
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

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    #: opaque; empty when this is the last page
    next_page_token: str = ""


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


class Store(Protocol):
    """Persistence for every tenant. Errors raised are from ``neoactions.server.errors``."""

    async def open(self) -> None:
        """Connect, create the admin tenant and apply pending migrations to every tenant."""

    async def close(self) -> None: ...

    # --- tenants -----------------------------------------------------------
    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Create the tenant's schema/file and migrate it. ``AlreadyExists`` (TENANT_ALREADY_EXISTS)."""

    async def get_tenant(self, slug: str) -> Tenant:
        """``NotFound`` (TENANT_NOT_FOUND)."""

    async def list_tenants(self, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Tenant]: ...

    # --- actions -----------------------------------------------------------
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

    async def list_actions(self, tenant: str, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "") -> Page[Action]:
        """Current versions of the actions not deleted, ordered by name."""

    async def all_actions(self, tenant: str) -> list[Action]:
        """Every action not deleted, current versions, enabled or not (the matcher loads these)."""

    # --- events and executions ------------------------------------------------
    async def append(self, tenant: str, events: Sequence[Event], executions: Sequence[Execution]) -> None:
        """Store events and executions in one transaction. An event with executions is stored as
        ``processing``, one without as ``completed``."""

    async def get_event(self, tenant: str, event_id: str) -> Event:
        """``NotFound`` (EVENT_NOT_FOUND)."""

    async def list_events(
        self, tenant: str, filter: EventFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Event]:
        """Newest first."""

    async def start_attempt(self, tenant: str, execution_id: str, attempt: Attempt) -> None:
        """Record attempt ``attempt.number`` as running; the execution becomes ``running``."""

    async def finish_attempt(
        self,
        tenant: str,
        execution_id: str,
        attempt: Attempt,
        status: ExecutionStatus,
        output: JSON = None,
        error: ExecutionError | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Record the end of an attempt (``attempt.status``, ``finished_at``, output, error) and move
        the execution to ``status``: a final status, or ``scheduled`` with ``next_attempt_at`` for a
        retry. When the execution reaches a final status and all executions of its event are final,
        the event becomes ``completed`` (all succeeded) or ``failed``."""

    async def get_execution(self, tenant: str, execution_id: str) -> Execution:
        """With its attempts. ``NotFound`` (EXECUTION_NOT_FOUND)."""

    async def list_executions(
        self, tenant: str, filter: ExecutionFilter, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> Page[Execution]:
        """Newest first, without attempts."""

    async def unfinished_executions(self, tenant: str, limit: int = 10_000) -> list[Execution]:
        """Executions not in a final status (pending, scheduled, running), oldest first, with attempts."""


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "EventFilter", "ExecutionFilter", "Page", "Store"]
