"""The domain model: tenants, events, actions, executions and their attempts.

Plain dataclasses with no I/O. Stores persist them, servicers translate them to
and from protobuf, the engine moves them through the pipeline.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]

ADMIN_TENANT = "admin"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Priority(enum.IntEnum):
    """Matched actions run highest first; the value is the sort key."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Priority:
        return cls[text.upper()]


class ExecutionMode(enum.StrEnum):
    SYNC = "sync"
    ASYNC = "async"
    QUEUED = "queued"


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class ExecutionStatus(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DEAD_LETTERED = "dead_lettered"
    #: an attempt suspended it (waiting for a time or to be woken); it holds no worker
    WAITING = "waiting"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.DEAD_LETTERED,
    }
)
UNFINISHED_STATUSES = frozenset(set(ExecutionStatus) - FINAL_STATUSES)


@dataclass(slots=True)
class Tenant:
    slug: str
    display_name: str = ""
    created_at: datetime = field(default_factory=utcnow)

    @property
    def schema(self) -> str:
        """The PostgreSQL schema (and embedded file stem) holding this tenant."""
        return self.slug if self.slug == ADMIN_TENANT else f"tenant_{self.slug}"


@dataclass(slots=True)
class Event:
    """An immutable fact published by a service (maps 1:1 to a CloudEvents envelope)."""

    id: str
    tenant: str
    type: str
    data: JSONObject
    source: str = ""
    subject: str = ""
    aggregate_type: str = ""
    aggregate_id: str = ""
    time: datetime = field(default_factory=utcnow)
    metadata: JSONObject = field(default_factory=dict)
    correlation_id: str = ""
    causation_id: str = ""
    idempotency_key: str = ""
    status: EventStatus = EventStatus.PENDING
    received_at: datetime = field(default_factory=utcnow)
    #: the producer's own id (CloudEvents ``id``); with ``source`` it identifies a redelivery
    source_id: str = ""

    def dedup_key(self) -> str:
        """What makes two publishes the same event: the idempotency key, else CloudEvents
        ``source`` + ``id``; ``""`` when the event has neither (never deduplicated)."""
        if self.idempotency_key:
            return "key:" + self.idempotency_key
        if self.source and self.source_id:
            return f"ce:{len(self.source)}:{self.source}{self.source_id}"
        return ""

    def envelope(self) -> JSONObject:
        """The event as the dict conditions and templates see (``data.x``, ``metadata.y``, ``type``)."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "time": self.time.isoformat(),
            "data": self.data,
            "metadata": self.metadata,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "tenant": self.tenant,
        }


# --- actions ---------------------------------------------------------------


@dataclass(slots=True)
class FieldCondition:
    """``{field, operator, value}``: one test on a dot path of the event envelope."""

    field: str
    operator: str
    value: JSON = None

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"field": self.field, "operator": self.operator}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(slots=True)
class ConditionGroup:
    """``all`` / ``any`` of several conditions, or ``not`` of one."""

    kind: str  # "all" | "any" | "not"
    conditions: list[Condition]

    def to_dict(self) -> JSONObject:
        if self.kind == "not":
            return {"not": self.conditions[0].to_dict()}
        return {self.kind: [c.to_dict() for c in self.conditions]}


@dataclass(slots=True)
class CelCondition:
    """A Common Expression Language expression over the event envelope."""

    expression: str

    def to_dict(self) -> JSONObject:
        return {"cel": self.expression}


Condition: TypeAlias = FieldCondition | ConditionGroup | CelCondition


@dataclass(slots=True)
class Trigger:
    event_types: list[str]
    conditions: list[Condition] = field(default_factory=list)
    context_filters: JSONObject = field(default_factory=dict)
    #: an AWS EventBridge-style JSON event pattern, an alternative to event_types + conditions
    event_pattern: JSONObject | None = None

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"event_types": list(self.event_types)}
        if self.conditions:
            out["conditions"] = [c.to_dict() for c in self.conditions]
        if self.context_filters:
            out["context_filters"] = dict(self.context_filters)
        if self.event_pattern is not None:
            out["event_pattern"] = self.event_pattern
        return out


@dataclass(slots=True)
class HandlerSpec:
    type: str
    config: JSONObject = field(default_factory=dict)
    #: a version of the handler type; ``""``: the newest registered when an execution starts
    version: str = ""

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"type": self.type, "config": self.config}
        if self.version:
            out["version"] = self.version
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> HandlerSpec:
        return cls(type=doc["type"], config=dict(doc.get("config") or {}), version=str(doc.get("version") or ""))


@dataclass(slots=True)
class RetryPolicy:
    max_retries: int = 0
    backoff: str = "exponential"  # exponential | linear | fixed
    initial_delay_ms: int = 1000
    max_delay_ms: int = 60_000
    jitter: bool = True
    max_age_seconds: float = 0.0  # 0 = no limit

    def to_dict(self) -> JSONObject:
        return {
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "initial_delay_ms": self.initial_delay_ms,
            "max_delay_ms": self.max_delay_ms,
            "jitter": self.jitter,
            "max_age_seconds": self.max_age_seconds,
        }


@dataclass(slots=True)
class RateLimit:
    per_minute: int = 0  # 0 = unlimited
    per_hour: int = 0

    def to_dict(self) -> JSONObject:
        return {"per_minute": self.per_minute, "per_hour": self.per_hour}


@dataclass(slots=True)
class Action:
    """A configured reaction to events. Every update makes a new ``version``."""

    name: str
    trigger: Trigger
    handler: HandlerSpec
    tenant: str = ADMIN_TENANT
    id: str = ""
    description: str = ""
    priority: Priority = Priority.NORMAL
    execution_mode: ExecutionMode = ExecutionMode.ASYNC
    timeout_seconds: float = 30.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    max_concurrency: int = 0  # 0 = unlimited
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    def spec(self) -> JSONObject:
        """Everything a version freezes, as JSON (what stores keep per version)."""
        return {
            "description": self.description,
            "trigger": self.trigger.to_dict(),
            "handler": self.handler.to_dict(),
            "priority": self.priority.label,
            "execution_mode": self.execution_mode.value,
            "timeout_seconds": self.timeout_seconds,
            "retry_policy": self.retry_policy.to_dict(),
            "rate_limit": self.rate_limit.to_dict(),
            "max_concurrency": self.max_concurrency,
            "tags": list(self.tags),
        }


def condition_from_dict(d: Mapping[str, Any]) -> Condition:
    """The inverse of ``Condition.to_dict`` (for trusted, already validated documents)."""
    if "all" in d:
        return ConditionGroup("all", [condition_from_dict(c) for c in d["all"]])
    if "any" in d:
        return ConditionGroup("any", [condition_from_dict(c) for c in d["any"]])
    if "not" in d:
        return ConditionGroup("not", [condition_from_dict(d["not"])])
    if "cel" in d:
        return CelCondition(str(d["cel"]))
    return FieldCondition(field=str(d["field"]), operator=str(d["operator"]), value=d.get("value"))


def trigger_from_dict(d: Mapping[str, Any]) -> Trigger:
    return Trigger(
        event_types=list(d.get("event_types", [])),
        conditions=[condition_from_dict(c) for c in d.get("conditions", [])],
        context_filters=dict(d.get("context_filters", {})),
        event_pattern=d.get("event_pattern"),
    )


def action_from_spec(
    spec: Mapping[str, Any],
    *,
    tenant: str,
    name: str,
    id: str,
    version: int,
    enabled: bool,
    created_at: datetime,
    updated_at: datetime,
) -> Action:
    """Rebuild an action from ``Action.spec()`` plus its identity (the inverse of ``spec``)."""
    retry = spec.get("retry_policy", {})
    rate = spec.get("rate_limit", {})
    handler = spec["handler"]
    return Action(
        name=name,
        tenant=tenant,
        id=id,
        version=version,
        enabled=enabled,
        created_at=created_at,
        updated_at=updated_at,
        description=spec.get("description", ""),
        trigger=trigger_from_dict(spec["trigger"]),
        handler=HandlerSpec.from_dict(handler),
        priority=Priority.parse(spec.get("priority", "normal")),
        execution_mode=ExecutionMode(spec.get("execution_mode", "async")),
        timeout_seconds=float(spec.get("timeout_seconds", 30.0)),
        retry_policy=RetryPolicy(**retry),
        rate_limit=RateLimit(**rate),
        max_concurrency=int(spec.get("max_concurrency", 0)),
        tags=list(spec.get("tags", [])),
    )


# --- executions ------------------------------------------------------------


@dataclass(slots=True)
class ExecutionError:
    """Why an attempt or an execution failed, classified."""

    type: str
    message: str
    stack: str = ""
    retryable: bool = False
    #: the target asked to be retried no sooner than this (e.g. HTTP ``Retry-After``)
    retry_after_ms: int | None = None

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            "type": self.type,
            "message": self.message,
            "stack": self.stack,
            "retryable": self.retryable,
        }
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExecutionError:
        retry_after = d.get("retry_after_ms")
        return cls(
            type=str(d.get("type", "")),
            message=str(d.get("message", "")),
            stack=str(d.get("stack", "")),
            retryable=bool(d.get("retryable", False)),
            retry_after_ms=None if retry_after is None else int(retry_after),
        )


@dataclass(slots=True)
class Attempt:
    number: int
    runner: str
    status: ExecutionStatus = ExecutionStatus.RUNNING
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    output: JSON = None
    error: ExecutionError | None = None

    @property
    def duration_ms(self) -> float:
        if self.finished_at is None:
            return 0.0
        return (self.finished_at - self.started_at).total_seconds() * 1000.0


@dataclass(slots=True)
class InlineAction:
    """The handler of a direct ``Execute`` call that names no stored action."""

    handler: HandlerSpec
    timeout_seconds: float = 30.0


@dataclass(slots=True)
class Execution:
    """One run of one action for one event (or for a direct ``Execute`` call)."""

    id: str
    tenant: str
    action_id: str
    action_name: str
    action_version: int
    input: JSON
    handler_type: str = ""
    event_id: str = ""
    status: ExecutionStatus = ExecutionStatus.PENDING
    output: JSON = None
    error: ExecutionError | None = None
    idempotency_key: str = ""
    correlation_id: str = ""
    causation_id: str = ""
    parent_execution_id: str = ""
    priority: Priority = Priority.NORMAL
    mode: ExecutionMode = ExecutionMode.ASYNC
    attempt_count: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    #: set only for a direct ``Execute`` of an inline handler (``action_name`` is then ``""``)
    inline: InlineAction | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: attempts made before the current attempt series (a requeue or manual retry starts a new one)
    attempt_base: int = 0
    #: when the current attempt series began (``None``: at creation); ``max_age`` counts from here
    series_started_at: datetime | None = None
    #: the process that owns the execution until ``lease_expires_at`` (``""``: nobody)
    lease_owner: str = ""
    lease_expires_at: datetime | None = None
    #: the handler type's version, resolved at the first attempt and kept for every retry
    handler_version: str = ""
    #: the event this execution replays (set only on executions a replay created)
    replay_of: str = ""
    #: the W3C ``traceparent`` of the span that scheduled it ('' when tracing is off): its
    #: attempts join that trace wherever they run
    trace_context: str = ""

    @property
    def series_start(self) -> datetime:
        return self.series_started_at or self.created_at


class UpdateKind(enum.StrEnum):
    """What an :class:`ExecutionUpdate` reports."""

    EVENT_ACCEPTED = "event_accepted"
    SCHEDULED = "scheduled"
    STARTED = "started"
    LOG = "log"
    PROGRESS = "progress"
    ATTEMPT_FAILED = "attempt_failed"
    RETRY_SCHEDULED = "retry_scheduled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DEAD_LETTERED = "dead_lettered"
    #: the attempt suspended the execution: ``waiting`` until a time or until woken
    SUSPENDED = "suspended"
    #: a workflow run's step (``ExecutionUpdate.step``) changed: see ``neoactions.server.workflows``
    STEP_SCHEDULED = "step_scheduled"
    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_WAITING = "step_waiting"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_KINDS


_FINAL_KINDS = frozenset(
    {UpdateKind.SUCCEEDED, UpdateKind.FAILED, UpdateKind.TIMED_OUT, UpdateKind.CANCELLED, UpdateKind.DEAD_LETTERED}
)


@dataclass(slots=True)
class ExecutionUpdate:
    """One thing that happened to an execution (or to an event's fan-out), in order."""

    tenant: str
    kind: UpdateKind
    execution_id: str = ""
    action_name: str = ""
    event_id: str = ""
    correlation_id: str = ""
    status: ExecutionStatus | None = None
    attempt: int = 0
    message: str = ""
    progress: float = 0.0
    output: JSON = None
    error: ExecutionError | None = None
    time: datetime = field(default_factory=utcnow)
    #: position on the update bus; a resume token names it
    sequence: int = 0
    #: the workflow step a ``STEP_*`` update is about (``name`` or ``name[index]``)
    step: str = ""

    @classmethod
    def about(
        cls,
        ex: Execution,
        kind: UpdateKind,
        *,
        attempt: int = 0,
        message: str = "",
        progress: float = 0.0,
        output: JSON = None,
        error: ExecutionError | None = None,
        step: str = "",
    ) -> ExecutionUpdate:
        """An update about ``ex`` as it stands now."""
        return cls(
            tenant=ex.tenant,
            kind=kind,
            execution_id=ex.id,
            action_name=ex.action_name,
            event_id=ex.event_id,
            correlation_id=ex.correlation_id,
            status=ex.status,
            attempt=attempt,
            message=message,
            progress=progress,
            output=output,
            error=error,
            step=step,
        )


__all__ = [
    "ADMIN_TENANT",
    "FINAL_STATUSES",
    "JSON",
    "UNFINISHED_STATUSES",
    "Action",
    "Attempt",
    "CelCondition",
    "Condition",
    "ConditionGroup",
    "Event",
    "EventStatus",
    "Execution",
    "ExecutionError",
    "ExecutionMode",
    "ExecutionStatus",
    "ExecutionUpdate",
    "FieldCondition",
    "HandlerSpec",
    "InlineAction",
    "JSONObject",
    "Priority",
    "RateLimit",
    "RetryPolicy",
    "Tenant",
    "Trigger",
    "UpdateKind",
    "action_from_spec",
    "condition_from_dict",
    "trigger_from_dict",
    "utcnow",
]
