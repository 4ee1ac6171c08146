"""Action stats, the tenant overview and action health as the client returns them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from neoactions.v1 import stats_pb2

LEVELS = {
    stats_pb2.ActionHealth.HEALTHY: "healthy",
    stats_pb2.ActionHealth.DEGRADED: "degraded",
    stats_pb2.ActionHealth.CRITICAL: "critical",
}


def _time(msg: Any, name: str) -> datetime | None:
    return getattr(msg, name).ToDatetime().replace(tzinfo=None) if msg.HasField(name) else None


def _action(resource: str) -> str:
    """``tenants/t/actions/ship`` → ``ship`` (``""`` for a tenant's total)."""
    return resource.rsplit("/", 1)[-1] if resource else ""


@dataclass(frozen=True, slots=True)
class ActionStats:
    """What an action's executions that ended in ``[start, end)`` add up to (``action`` ``""``:
    the tenant's total). Durations in seconds; ``throughput`` in executions per second."""

    action: str
    start: datetime | None
    end: datetime | None
    count: int
    succeeded: int
    failed: int
    cancelled: int
    dead_lettered: int
    success_rate: float
    avg_seconds: float
    p50_seconds: float
    p95_seconds: float
    p99_seconds: float
    throughput: float
    last_error_type: str = ""
    last_error_message: str = ""
    last_error_time: datetime | None = None
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("start", "end", "last_error_time"):
            out[key] = out[key].isoformat() + "Z" if out[key] is not None else None
        return out


@dataclass(frozen=True, slots=True)
class ActionHealth:
    """``healthy``, ``degraded`` or ``critical``, why, and the stats it was judged from."""

    action: str
    level: str
    reason: str
    stats: ActionStats

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "level": self.level, "reason": self.reason, "stats": self.stats.to_dict()}


@dataclass(frozen=True, slots=True)
class Overview:
    tenant: str
    total: ActionStats
    actions: list[ActionStats] = field(default_factory=list)
    health: list[ActionHealth] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "total": self.total.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
            "health": [h.to_dict() for h in self.health],
        }


def stats_from_pb(msg: stats_pb2.ActionStats) -> ActionStats:
    return ActionStats(
        action=_action(msg.action),
        start=_time(msg, "start_time"),
        end=_time(msg, "end_time"),
        count=msg.count,
        succeeded=msg.succeeded,
        failed=msg.failed,
        cancelled=msg.cancelled,
        dead_lettered=msg.dead_lettered,
        success_rate=msg.success_rate,
        avg_seconds=msg.avg_duration_seconds,
        p50_seconds=msg.p50_duration_seconds,
        p95_seconds=msg.p95_duration_seconds,
        p99_seconds=msg.p99_duration_seconds,
        throughput=msg.throughput_per_second,
        last_error_type=msg.last_error_type,
        last_error_message=msg.last_error_message,
        last_error_time=_time(msg, "last_error_time"),
        truncated=msg.truncated,
    )


def health_from_pb(msg: stats_pb2.ActionHealth) -> ActionHealth:
    return ActionHealth(_action(msg.action), LEVELS.get(msg.level, "unknown"), msg.reason, stats_from_pb(msg.stats))


def overview_from_pb(msg: stats_pb2.Overview) -> Overview:
    return Overview(
        tenant=msg.tenant.rsplit("/", 1)[-1],
        total=stats_from_pb(msg.total),
        actions=[stats_from_pb(a) for a in msg.actions],
        health=[health_from_pb(h) for h in msg.health],
    )


__all__ = ["ActionHealth", "ActionStats", "Overview", "health_from_pb", "overview_from_pb", "stats_from_pb"]
