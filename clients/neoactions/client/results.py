"""What client calls return beyond the plain domain objects."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from neoactions.domain.model import Action, Event, Execution, ExecutionUpdate

T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a List call; pass ``next_page_token`` back for the next one."""

    items: list[T]
    #: empty on the last page
    next_page_token: str = ""

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class PublishResult:
    """A published event and the executions it matched, in priority order.

    With ``wait=True`` the ``sync`` executions are final and carry their output.
    """

    event: Event
    executions: list[Execution] = field(default_factory=list)
    #: the event was accepted before (same idempotency key or CloudEvents source + id within
    #: the deduplication window): these are the original event and executions
    duplicate: bool = False


@dataclass(slots=True)
class StreamedUpdate(ExecutionUpdate):
    """An :class:`ExecutionUpdate` as streamed by the server, with its resume token.

    Pass ``resume_token`` to ``watch_executions(resume_token=...)`` to continue
    after this update.
    """

    resume_token: str = ""

    @classmethod
    def of(cls, update: ExecutionUpdate, resume_token: str) -> StreamedUpdate:
        values = {f.name: getattr(update, f.name) for f in dataclasses.fields(update)}
        return cls(**values, resume_token=resume_token)


class ApplyOutcome(enum.StrEnum):
    """What ``apply`` did (or, in a dry run, would do) with one action."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(slots=True)
class ApplyResult:
    """One action of an ``apply``: its outcome and the action as stored (or validated)."""

    name: str
    outcome: ApplyOutcome
    action: Action
    #: True when nothing was changed (``dry_run=True``)
    dry_run: bool = False
    #: the spec fields that differ from the stored version (for ``updated``)
    changed: list[str] = field(default_factory=list)


__all__ = ["ApplyOutcome", "ApplyResult", "Page", "PublishResult", "StreamedUpdate"]


@dataclass(slots=True)
class ActionTest:
    """One action against a test event: matched or not, and why (``TestAction``).

    ``patterns`` and ``conditions`` are the server's outcomes as JSON-ready dicts:
    each condition has ``location``, ``kind``, ``matched`` and, for a field test,
    ``field``, ``operator``, ``expected``, ``actual`` and ``present``. With
    ``execute=True`` a matched action also carries the execution that ran.
    """

    action: str
    matched: bool
    reason: str
    enabled: bool = True
    priority: str = "normal"
    patterns: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    execution_id: str = ""
    execution_status: str = ""
    output: Any = None
