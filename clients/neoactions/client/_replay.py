"""The client side of ``ReplayService``: requests and the results it returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2

from neoactions.client import _requests as rq
from neoactions.client.results import ActionTest
from neoactions.domain import convert
from neoactions.domain.model import EventStatus
from neoactions.v1 import actions_pb2, events_pb2, replay_pb2

_STATES = {
    replay_pb2.Replay.STATE_RUNNING: "running",
    replay_pb2.Replay.STATE_SUCCEEDED: "succeeded",
    replay_pb2.Replay.STATE_FAILED: "failed",
    replay_pb2.Replay.STATE_CANCELLED: "cancelled",
}
_STATUS = {
    EventStatus.PENDING: events_pb2.EVENT_STATUS_PENDING,
    EventStatus.PROCESSING: events_pb2.EVENT_STATUS_PROCESSING,
    EventStatus.COMPLETED: events_pb2.EVENT_STATUS_COMPLETED,
    EventStatus.FAILED: events_pb2.EVENT_STATUS_FAILED,
}


@dataclass(slots=True)
class ReplayCount:
    """Per action, what a dry run found."""

    action: str
    events: int
    sample_event_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DryRun:
    events_scanned: int
    actions: list[ReplayCount]


@dataclass(slots=True)
class ReplayJob:
    """A background replay and its progress."""

    id: str
    state: str
    events_scanned: int = 0
    events_matched: int = 0
    executions_created: int = 0
    already_replayed: int = 0
    #: action -> {"matched": n, "created": n}
    actions: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str = ""
    events_per_second: float = 0.0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.state != "running"


@dataclass(slots=True)
class NearMiss:
    event_id: str
    explanation: ActionTest


@dataclass(slots=True)
class ActionBacktest:
    action: str
    matched: int
    type_matched: int
    sample_event_ids: list[str] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)


@dataclass(slots=True)
class Backtest:
    events_scanned: int
    results: list[ActionBacktest]
    truncated: bool = False
    seconds: float = 0.0


@dataclass(slots=True)
class Retention:
    """How long the tenant keeps events and finished executions (``None``: forever)."""

    events: timedelta | None
    executions: timedelta | None
    updated_at: datetime | None = None


def event_filter(
    type_pattern: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    correlation_id: str = "",
    source: str = "",
    status: EventStatus | str | None = None,
    event_ids: Sequence[str] = (),
) -> replay_pb2.EventFilter:
    return replay_pb2.EventFilter(
        type_pattern=type_pattern,
        start_time=convert.ts(since),
        end_time=convert.ts(until),
        correlation_id=correlation_id,
        source=source,
        status=_STATUS[EventStatus(status)] if status else events_pb2.EVENT_STATUS_UNSPECIFIED,
        event_ids=list(event_ids),
    )


def _time(msg: Any, name: str) -> datetime | None:
    return convert.dt(getattr(msg, name)) if msg.HasField(name) else None


def job_from_pb(msg: replay_pb2.Replay) -> ReplayJob:
    return ReplayJob(
        id=msg.id,
        state=_STATES.get(msg.state, "unknown"),
        events_scanned=msg.events_scanned,
        events_matched=msg.events_matched,
        executions_created=msg.executions_created,
        already_replayed=msg.already_replayed,
        actions={
            p.action.rsplit("/", 1)[-1]: {"matched": p.matched, "created": p.created} for p in msg.action_progress
        },
        error=msg.error,
        events_per_second=msg.events_per_second,
        created_at=_time(msg, "create_time"),
        updated_at=_time(msg, "update_time"),
    )


def replay_result(resp: replay_pb2.ReplayEventsResponse) -> DryRun | ReplayJob:
    if resp.HasField("replay"):
        return job_from_pb(resp.replay)
    return DryRun(
        events_scanned=resp.events_scanned,
        actions=[ReplayCount(c.action.rsplit("/", 1)[-1], c.events, list(c.sample_event_ids)) for c in resp.actions],
    )


def definitions(actions: Iterable[Any]) -> list[actions_pb2.Action]:
    """Action definitions to backtest: ``ActionDocument``s (from a declarative file) or messages."""
    out = []
    for a in actions:
        msg = actions_pb2.Action()
        if isinstance(a, actions_pb2.Action):
            msg.CopyFrom(a)
        else:
            msg.CopyFrom(a.action)
            msg.name = a.name
        out.append(msg)
    return out


def backtest_result(resp: replay_pb2.BacktestActionResponse) -> Backtest:
    return Backtest(
        events_scanned=resp.events_scanned,
        truncated=resp.truncated,
        seconds=resp.elapsed.ToTimedelta().total_seconds(),
        results=[
            ActionBacktest(
                action=r.action.rsplit("/", 1)[-1],
                matched=r.matched,
                type_matched=r.type_matched,
                sample_event_ids=list(r.sample_event_ids),
                near_misses=[
                    NearMiss(
                        m.event_id,
                        rq.action_tests(actions_pb2.TestActionResponse(results=[m.explanation]))[0],
                    )
                    for m in r.near_misses
                ],
            )
            for r in resp.results
        ],
    )


def duration(value: timedelta | None) -> duration_pb2.Duration:
    msg = duration_pb2.Duration()
    if value:
        msg.FromTimedelta(value)
    return msg


def retention_from_pb(msg: replay_pb2.Retention) -> Retention:
    return Retention(
        events=msg.events.ToTimedelta() or None,
        executions=msg.executions.ToTimedelta() or None,
        updated_at=_time(msg, "update_time"),
    )


def replay_resource(tenant: str, replay_id: str) -> str:
    return f"tenants/{tenant}/replays/{replay_id}"


def retention_resource(tenant: str) -> str:
    return f"tenants/{tenant}/retention"


__all__ = [
    "ActionBacktest",
    "Backtest",
    "DryRun",
    "NearMiss",
    "ReplayCount",
    "ReplayJob",
    "Retention",
    "backtest_result",
    "definitions",
    "event_filter",
    "job_from_pb",
    "replay_result",
]
