"""Action health: healthy, degraded or critical, with the reason, from thresholds on the
error rate and the p95 duration of the executions that ended in the health window."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from neoactions.server.settings import Settings
from neoactions.server.telemetry.stats import ActionStats, StatsReader, window


class HealthLevel(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {HealthLevel.HEALTHY: 0, HealthLevel.DEGRADED: 1, HealthLevel.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When an action is degraded or critical (a duration threshold of 0 is off)."""

    window_seconds: float = 300.0
    #: fewer executions ended (in success or failure) than this: too few to judge, healthy
    min_executions: int = 5
    degraded_error_rate: float = 0.1
    critical_error_rate: float = 0.5
    degraded_p95_seconds: float = 0.0
    critical_p95_seconds: float = 0.0

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            s.health_window_seconds,
            s.health_min_executions,
            s.health_degraded_error_rate,
            s.health_critical_error_rate,
            s.health_degraded_p95_seconds,
            s.health_critical_p95_seconds,
        )


@dataclass(frozen=True, slots=True)
class ActionHealth:
    action: str
    level: HealthLevel
    reason: str
    stats: ActionStats


def _window(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def judge(stats: ActionStats, t: Thresholds) -> ActionHealth:
    """The health of ``stats``' action under thresholds ``t``: the worst level a threshold
    reaches, and why."""
    over = f"over the last {_window(t.window_seconds)}"
    if stats.judged < t.min_executions:
        reason = f"too few executions to judge ({stats.judged} ended, {t.min_executions} needed) {over}"
        return ActionHealth(stats.action, HealthLevel.HEALTHY, reason, stats)
    rate = stats.error_rate
    failures = f"error rate {rate:.0%} ({stats.failed} of {stats.judged} failed) {over}"
    slow = f"p95 duration {stats.p95_seconds:.3g}s {over}"
    found: list[tuple[HealthLevel, str]] = []
    if rate >= t.critical_error_rate:
        found.append((HealthLevel.CRITICAL, f"{failures} >= {t.critical_error_rate:.0%}"))
    elif rate >= t.degraded_error_rate and t.degraded_error_rate > 0:
        found.append((HealthLevel.DEGRADED, f"{failures} >= {t.degraded_error_rate:.0%}"))
    if t.critical_p95_seconds and stats.p95_seconds >= t.critical_p95_seconds:
        found.append((HealthLevel.CRITICAL, f"{slow} >= {t.critical_p95_seconds:g}s"))
    elif t.degraded_p95_seconds and stats.p95_seconds >= t.degraded_p95_seconds:
        found.append((HealthLevel.DEGRADED, f"{slow} >= {t.degraded_p95_seconds:g}s"))
    if not found:
        return ActionHealth(stats.action, HealthLevel.HEALTHY, f"{failures}; {slow}", stats)
    level = max((lv for lv, _ in found), key=lambda lv: lv.rank)
    return ActionHealth(stats.action, level, "; ".join(r for lv, r in found if lv is level), stats)


async def action_health(reader: StatsReader, tenant: str, action: str, t: Thresholds) -> ActionHealth:
    """The health of ``action`` over the health window ending now."""
    start, end = window(None, None, timedelta(seconds=t.window_seconds))
    return judge(await reader.action_stats(tenant, action, start, end), t)


async def tenant_health(reader: StatsReader, tenant: str, t: Thresholds) -> list[ActionHealth]:
    """The health of every action with executions in the health window ending now."""
    start, end = window(None, None, timedelta(seconds=t.window_seconds))
    _, actions = await reader.overview(tenant, start, end)
    return [judge(a, t) for a in actions if a.action]


__all__ = ["ActionHealth", "HealthLevel", "Thresholds", "action_health", "judge", "tenant_health"]
