"""ReplayService: replay stored events, backtest actions against them, and retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
from google.protobuf import duration_pb2

from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import EventStatus
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import streaming, unary
from neoactions.server.engine import Engine
from neoactions.server.eventstore.backtest import BacktestReport
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord, ReplayState, RetentionPolicy
from neoactions.server.eventstore.replay import ReplayReport, selection_from_json
from neoactions.v1 import events_pb2, replay_pb2, replay_pb2_grpc

_STATE_TO_PB = {
    ReplayState.RUNNING: replay_pb2.Replay.STATE_RUNNING,
    ReplayState.SUCCEEDED: replay_pb2.Replay.STATE_SUCCEEDED,
    ReplayState.FAILED: replay_pb2.Replay.STATE_FAILED,
    ReplayState.CANCELLED: replay_pb2.Replay.STATE_CANCELLED,
}
_EVENT_STATUS_TO_PB = {
    EventStatus.PENDING: events_pb2.EVENT_STATUS_PENDING,
    EventStatus.PROCESSING: events_pb2.EVENT_STATUS_PROCESSING,
    EventStatus.COMPLETED: events_pb2.EVENT_STATUS_COMPLETED,
    EventStatus.FAILED: events_pb2.EVENT_STATUS_FAILED,
}
MAX_EVENT_IDS = 10_000


def replay_name(tenant: str, replay_id: str) -> str:
    return f"tenants/{tenant}/replays/{replay_id}"


def selection_from_pb(msg: replay_pb2.EventFilter, path: str = "filter") -> EventSelection:
    if len(msg.event_ids) > MAX_EVENT_IDS:
        raise InvalidArgument.field(f"{path}.event_ids", f"at most {MAX_EVENT_IDS} ids")
    selection = EventSelection(
        type_pattern=msg.type_pattern,
        start_time=convert.opt_dt(msg, "start_time", f"{path}.start_time"),
        end_time=convert.opt_dt(msg, "end_time", f"{path}.end_time"),
        correlation_id=msg.correlation_id,
        source=msg.source,
        status=convert.event_status_from_pb(msg.status),
        event_ids=tuple(msg.event_ids),
    )
    if selection.start_time and selection.end_time and selection.start_time >= selection.end_time:
        raise InvalidArgument.field(f"{path}.end_time", "must be after start_time")
    return selection


def selection_to_pb(s: EventSelection) -> replay_pb2.EventFilter:
    return replay_pb2.EventFilter(
        type_pattern=s.type_pattern,
        start_time=convert.ts(s.start_time),
        end_time=convert.ts(s.end_time),
        correlation_id=s.correlation_id,
        source=s.source,
        status=_EVENT_STATUS_TO_PB[s.status] if s.status else events_pb2.EVENT_STATUS_UNSPECIFIED,
        event_ids=list(s.event_ids),
    )


def replay_to_pb(tenant: str, job: ReplayJobRecord) -> replay_pb2.Replay:
    p = job.progress
    return replay_pb2.Replay(
        name=replay_name(tenant, job.id),
        id=job.id,
        state=_STATE_TO_PB[job.state],
        filter=selection_to_pb(selection_from_json(job.spec.get("selection", {}))),
        actions=list(job.spec.get("actions", [])),
        events_per_second=float(job.spec.get("events_per_second", 0.0)),
        events_scanned=int(p.get("events_scanned", 0)),
        events_matched=int(p.get("events_matched", 0)),
        executions_created=int(p.get("executions_created", 0)),
        already_replayed=int(p.get("already_replayed", 0)),
        action_progress=[
            replay_pb2.ReplayActionProgress(
                action=names.action_name(tenant, a), matched=c["matched"], created=c["created"]
            )
            for a, c in sorted(p.get("actions", {}).items())
        ],
        error=str(p.get("error", "")),
        create_time=convert.ts(job.created_at),
        update_time=convert.ts(job.updated_at),
    )


def report_to_pb(tenant: str, report: ReplayReport) -> replay_pb2.ReplayEventsResponse:
    return replay_pb2.ReplayEventsResponse(
        events_scanned=report.events_scanned,
        actions=[
            replay_pb2.ActionReplayCount(
                action=names.action_name(tenant, c.action), events=c.events, sample_event_ids=c.sample_event_ids
            )
            for c in report.actions
        ],
    )


def backtest_to_pb(tenant: str, report: BacktestReport) -> replay_pb2.BacktestActionResponse:
    elapsed = duration_pb2.Duration()
    elapsed.FromTimedelta(timedelta(seconds=report.seconds))
    return replay_pb2.BacktestActionResponse(
        events_scanned=report.events_scanned,
        truncated=report.truncated,
        elapsed=elapsed,
        results=[
            replay_pb2.ActionBacktest(
                action=names.action_name(tenant, r.action),
                matched=r.matched,
                type_matched=r.type_matched,
                sample_event_ids=r.sample_event_ids,
                near_misses=[
                    replay_pb2.NearMiss(
                        event_id=m.event_id, explanation=convert.explanation_to_pb(tenant, m.explanation)
                    )
                    for m in r.near_misses
                ],
            )
            for r in report.actions
        ],
    )


def _seconds(msg: duration_pb2.Duration, field: str) -> int:
    if msg.nanos or msg.seconds < 0:
        raise InvalidArgument.field(field, "must be a whole, non-negative number of seconds")
    return int(msg.seconds)


def _duration(seconds: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=seconds)


def retention_to_pb(tenant: str, policy: RetentionPolicy) -> replay_pb2.Retention:
    return replay_pb2.Retention(
        name=f"tenants/{tenant}/retention",
        events=_duration(policy.events_seconds),
        executions=_duration(policy.executions_seconds),
        update_time=convert.ts(policy.updated_at),
    )


def _retention_tenant(name: str, field: str) -> str:
    tenant_part, sep, rest = name.rpartition("/")
    if not sep or rest != "retention":
        raise InvalidArgument.field(field, "must be tenants/{tenant}/retention")
    return names.parse_tenant(tenant_part, field)


class ReplayServicer(replay_pb2_grpc.ReplayServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def ReplayEvents(
        self, request: replay_pb2.ReplayEventsRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.ReplayEventsResponse:
        tenant = names.parse_tenant(request.parent)
        selection = selection_from_pb(request.filter)
        actions = [names.parse_action_ref(a, tenant, f"actions[{i}]") for i, a in enumerate(request.actions)]
        if request.events_per_second < 0:
            raise InvalidArgument.field("events_per_second", "must not be negative")
        result = await self._engine.replay_events(
            caller_of(context),
            tenant,
            selection,
            actions,
            dry_run=request.dry_run,
            sample_size=request.sample_size if request.HasField("sample_size") else 5,
            events_per_second=request.events_per_second,
        )
        if isinstance(result, ReplayReport):
            return report_to_pb(tenant, result)
        return replay_pb2.ReplayEventsResponse(replay=replay_to_pb(tenant, result))

    @unary
    async def GetReplay(
        self, request: replay_pb2.GetReplayRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.Replay:
        tenant, replay_id = names.parse_child(request.name, "replays")
        return replay_to_pb(tenant, await self._engine.get_replay(caller_of(context), tenant, replay_id))

    @streaming
    async def WatchReplay(
        self, request: replay_pb2.GetReplayRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[replay_pb2.Replay]:
        tenant, replay_id = names.parse_child(request.name, "replays")
        jobs = self._engine.watch_replay(caller_of(context), tenant, replay_id)
        try:
            async for job in jobs:
                yield replay_to_pb(tenant, job)
        finally:
            await jobs.aclose()

    @unary
    async def CancelReplay(
        self, request: replay_pb2.CancelReplayRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.Replay:
        tenant, replay_id = names.parse_child(request.name, "replays")
        return replay_to_pb(tenant, await self._engine.cancel_replay(caller_of(context), tenant, replay_id))

    @unary
    async def BacktestAction(
        self, request: replay_pb2.BacktestActionRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.BacktestActionResponse:
        tenant = names.parse_tenant(request.parent)
        definitions = []
        for i, msg in enumerate(request.actions):
            name = msg.name.rsplit("/", 1)[-1]
            if not name:
                raise InvalidArgument.field(f"actions[{i}].name", "name the action")
            definitions.append(convert.action_from_pb(msg, tenant, name))
        stored = [names.parse_action_ref(a, tenant, f"action_names[{i}]") for i, a in enumerate(request.action_names)]
        report = await self._engine.backtest(
            caller_of(context),
            tenant,
            definitions,
            stored,
            selection_from_pb(request.filter),
            sample_size=request.sample_size if request.HasField("sample_size") else 5,
            near_miss_size=request.near_miss_size if request.HasField("near_miss_size") else 5,
            max_events=request.max_events,
        )
        return backtest_to_pb(tenant, report)

    @unary
    async def GetRetention(
        self, request: replay_pb2.GetRetentionRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.Retention:
        tenant = _retention_tenant(request.name, "name")
        return retention_to_pb(tenant, await self._engine.get_retention(caller_of(context), tenant))

    @unary
    async def SetRetention(
        self, request: replay_pb2.SetRetentionRequest, context: grpc.aio.ServicerContext
    ) -> replay_pb2.Retention:
        tenant = _retention_tenant(request.retention.name, "retention.name")
        policy = RetentionPolicy(
            events_seconds=_seconds(request.retention.events, "retention.events"),
            executions_seconds=_seconds(request.retention.executions, "retention.executions"),
        )
        return retention_to_pb(tenant, await self._engine.set_retention(caller_of(context), tenant, policy))


__all__ = ["ReplayServicer", "replay_to_pb", "selection_from_pb"]
