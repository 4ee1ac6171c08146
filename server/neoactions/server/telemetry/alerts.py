"""Alerts as events: when an action's health changes, an event is published into its tenant
(``neoactions.alert.action_degraded``, ``…_critical``, ``…_recovered``) so ordinary actions
can notify people (docs/observability.md has an alert → webhook example).

Each evaluation reads, per tenant, the executions that ended in the health window and the
newest alert of each action (the state the last transition left, shared by every process
through the store). A transition is published once: its idempotency key names the action,
the new level and the window it happened in, so processes evaluating the same transition
store one event (the publisher's deduplication).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import Event, JSONObject, utcnow
from neoactions.server.store import EventFilter, EventStore, StatsStore
from neoactions.server.telemetry import metrics
from neoactions.server.telemetry.health import ActionHealth, HealthLevel, Thresholds, judge
from neoactions.server.telemetry.stats import StatsReader, compute

log = logging.getLogger(__name__)

ALERT_PREFIX = "neoactions.alert."
ALERT_TYPES = {
    HealthLevel.DEGRADED: ALERT_PREFIX + "action_degraded",
    HealthLevel.CRITICAL: ALERT_PREFIX + "action_critical",
    HealthLevel.HEALTHY: ALERT_PREFIX + "action_recovered",
}
_LEVEL_OF_TYPE = {t: level for level, t in ALERT_TYPES.items()}
#: the ``source`` of alert events
SOURCE = "neoactions/health"
#: alerts read back per evaluation to know each action's last published level
_RECENT_ALERTS = 1000

Publish = Callable[[str, list[Event]], Awaitable[object]]


class AlertStore(StatsStore, EventStore, Protocol):
    """What the alert loop reads."""


def alert_event(tenant: str, health: ActionHealth, previous: HealthLevel, at: datetime, window_seconds: float) -> Event:
    """The event announcing ``health`` (a change from ``previous``)."""
    stats = health.stats
    data: JSONObject = {
        "action": health.action,
        "level": health.level.value,
        "previous_level": previous.value,
        "reason": health.reason,
        "error_rate": round(stats.error_rate, 4),
        "failed": stats.failed,
        "ended": stats.judged,
        "p95_seconds": round(stats.p95_seconds, 6),
        "window_seconds": window_seconds,
    }
    if stats.last_error is not None:
        data["last_error"] = {"type": stats.last_error.type, "message": stats.last_error.message[:500]}
    bucket = int(at.timestamp() // window_seconds)
    return Event(
        id="",
        tenant=tenant,
        type=ALERT_TYPES[health.level],
        data=data,
        source=SOURCE,
        subject=health.action,
        time=at,
        idempotency_key=f"neoactions.alert:{health.action}:{health.level.value}:{bucket}",
    )


class AlertLoop:
    """Evaluates every tenant's action health every ``interval`` seconds and publishes the
    transitions."""

    def __init__(
        self,
        store: AlertStore,
        publish: Publish,
        tenants: Callable[[], Awaitable[list[str]]],
        thresholds: Thresholds,
        interval: float,
    ) -> None:
        self._store = store
        self._stats = StatsReader(store)
        self._publish = publish
        self._tenants = tenants
        self.thresholds = thresholds
        self._interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for tenant in await self._tenants():
                try:
                    await self.evaluate(tenant)
                except NeoActionsError as exc:
                    log.warning("action health of tenant %s not evaluated: %s", tenant, exc)
                except Exception:  # the loop must outlive any one evaluation
                    log.exception("action health of tenant %s not evaluated", tenant)

    async def last_levels(self, tenant: str) -> dict[str, HealthLevel]:
        """Each action's level as its newest alert left it (no alert: healthy)."""
        page = await self._store.list_events(tenant, EventFilter(type_pattern=ALERT_PREFIX + "*"), _RECENT_ALERTS)
        levels: dict[str, HealthLevel] = {}
        for event in page.items:  # newest first
            level = _LEVEL_OF_TYPE.get(event.type)
            if level is not None and event.subject not in levels:
                levels[event.subject] = level
        return levels

    async def evaluate(self, tenant: str, now: datetime | None = None) -> list[Event]:
        """Judge every action with executions in the window or a standing alert; publish the
        changes. Returns the alert events published."""
        t = self.thresholds
        end = now or utcnow()
        start = end - timedelta(seconds=t.window_seconds)
        total, per_action = await self._stats.overview(tenant, start, end)
        stats = {s.action: s for s in per_action if s.action}
        previous = await self.last_levels(tenant)
        alerts: list[Event] = []
        healths: list[ActionHealth] = []
        for action in sorted(set(stats) | {a for a, lv in previous.items() if lv is not HealthLevel.HEALTHY}):
            health = judge(stats.get(action) or compute(action, [], start, end), t)
            healths.append(health)
            before = previous.get(action, HealthLevel.HEALTHY)
            if health.level is not before:
                alerts.append(alert_event(tenant, health, before, end, t.window_seconds))
        if alerts:
            await self._publish(tenant, alerts)
            for event in alerts:
                log.info("alert %s for action %s in tenant %s", event.type, event.subject, tenant)
        _observe(tenant, total.dead_lettered, healths)
        return alerts


def _observe(tenant: str, dead_lettered: int, healths: Sequence[ActionHealth]) -> None:
    if not metrics.state.enabled:
        return
    metrics.set_gauge("neoactions.dead_letters", dead_lettered, tenant=tenant)
    instruments = metrics.state.instruments
    if instruments is None:
        return
    worst = 0
    for h in healths:
        worst = max(worst, h.level.rank)
        action = instruments.action(h.action)
        if action:
            metrics.set_gauge("neoactions.action.health", h.level.rank, tenant=tenant, action=action)
    if not instruments.action_labels:
        # no action names allowed: the tenant's worst action
        metrics.set_gauge("neoactions.action.health", worst, tenant=tenant)


__all__ = ["ALERT_PREFIX", "ALERT_TYPES", "SOURCE", "AlertLoop", "AlertStore", "alert_event"]
