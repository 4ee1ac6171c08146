"""StatsService: action stats, the tenant overview and action health."""

from __future__ import annotations

import grpc

from neoactions.domain import convert, names
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.server.telemetry.health import ActionHealth, HealthLevel
from neoactions.server.telemetry.stats import ActionStats
from neoactions.v1 import stats_pb2, stats_pb2_grpc

_LEVELS = {
    HealthLevel.HEALTHY: stats_pb2.ActionHealth.HEALTHY,
    HealthLevel.DEGRADED: stats_pb2.ActionHealth.DEGRADED,
    HealthLevel.CRITICAL: stats_pb2.ActionHealth.CRITICAL,
}


def stats_to_pb(tenant: str, s: ActionStats) -> stats_pb2.ActionStats:
    msg = stats_pb2.ActionStats(
        action=names.action_name(tenant, s.action) if s.action else "",
        start_time=convert.ts(s.start),
        end_time=convert.ts(s.end),
        count=s.count,
        succeeded=s.succeeded,
        failed=s.failed,
        cancelled=s.cancelled,
        dead_lettered=s.dead_lettered,
        success_rate=s.success_rate,
        avg_duration_seconds=s.avg_seconds,
        p50_duration_seconds=s.p50_seconds,
        p95_duration_seconds=s.p95_seconds,
        p99_duration_seconds=s.p99_seconds,
        throughput_per_second=s.throughput,
        truncated=s.truncated,
    )
    if s.last_error is not None:
        msg.last_error_type = s.last_error.type
        msg.last_error_message = s.last_error.message
        when = convert.ts(s.last_error_at)
        if when is not None:
            msg.last_error_time.CopyFrom(when)
    return msg


def health_to_pb(tenant: str, h: ActionHealth) -> stats_pb2.ActionHealth:
    return stats_pb2.ActionHealth(
        action=names.action_name(tenant, h.action),
        level=_LEVELS[h.level],
        reason=h.reason,
        stats=stats_to_pb(tenant, h.stats),
    )


class StatsServicer(stats_pb2_grpc.StatsServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def GetActionStats(
        self, request: stats_pb2.GetActionStatsRequest, context: grpc.aio.ServicerContext
    ) -> stats_pb2.ActionStats:
        tenant, action = names.parse_child(request.name, "actions")
        stats = await self._engine.get_action_stats(
            caller_of(context),
            tenant,
            action,
            convert.opt_dt(request, "start_time"),
            convert.opt_dt(request, "end_time"),
        )
        return stats_to_pb(tenant, stats)

    @unary
    async def GetOverview(
        self, request: stats_pb2.GetOverviewRequest, context: grpc.aio.ServicerContext
    ) -> stats_pb2.Overview:
        tenant = names.parse_tenant(request.parent)
        total, actions, health = await self._engine.get_overview(
            caller_of(context), tenant, convert.opt_dt(request, "start_time"), convert.opt_dt(request, "end_time")
        )
        return stats_pb2.Overview(
            tenant=names.tenant_name(tenant),
            total=stats_to_pb(tenant, total),
            actions=[stats_to_pb(tenant, a) for a in actions],
            health=[health_to_pb(tenant, h) for h in health],
        )

    @unary
    async def GetActionHealth(
        self, request: stats_pb2.GetActionHealthRequest, context: grpc.aio.ServicerContext
    ) -> stats_pb2.ActionHealth:
        tenant, action = names.parse_child(request.name, "actions")
        health = await self._engine.get_action_health(caller_of(context), tenant, action)
        return health_to_pb(tenant, health)


__all__ = ["StatsServicer", "health_to_pb", "stats_to_pb"]
