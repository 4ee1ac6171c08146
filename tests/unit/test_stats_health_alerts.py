"""Action stats match a hand count; a failing action turns degraded, then critical, with one
alert event each time, and recovers; the alerts reach an ordinary action. An engine on the
in-memory store, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.model import ADMIN_TENANT, Action, Event, HandlerSpec, Trigger, utcnow
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings
from neoactions.server.store import EventFilter
from neoactions.server.telemetry.alerts import AlertLoop
from neoactions.server.telemetry.health import HealthLevel, Thresholds, judge
from neoactions.server.telemetry.stats import compute, percentile
from tests.conftest import eventually


class Switch:
    """A runner failing while ``failing`` is set; it remembers the alerts it is handed."""

    def __init__(self) -> None:
        self.failing = False
        self.alerts: list[dict[str, Any]] = []

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        if config.get("pager"):
            self.alerts.append({"type": ctx.event_type, **data})
            yield Result({"paged": True})
        elif self.failing:
            yield Failure.of("PaymentDeclined", f"declined #{data['n']}")
        else:
            yield Result({"n": data["n"]})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Engine, Switch]]:
    store = MemoryStore()
    await store.open()
    switch = Switch()
    registry = HandlerRegistry()
    registry.register(HandlerType("switch", switch))
    engine = Engine(store, registry, InProcessUpdateBus(), Settings(data_dir=tmp_path, poll_interval_seconds=0.05))
    await engine.start()
    try:
        yield engine, switch
    finally:
        await engine.stop(5.0)
        await store.close()


def _charge() -> Action:
    return Action(name="charge", trigger=Trigger(["payment.made"]), handler=HandlerSpec("switch"), tenant="admin")


async def _run(engine: Engine, n: int) -> None:
    """Publish ``n`` payments and wait until their executions ended."""
    events = [Event("", ADMIN_TENANT, "payment.made", data={"n": i}) for i in range(n)]
    published = await engine.publish(Caller(), ADMIN_TENANT, events)
    ids = [x.id for p in published for x in p.executions]

    async def ended() -> bool:
        return all([(await engine.store.get_execution(ADMIN_TENANT, i)).status.is_final for i in ids])

    await eventually(ended, within=10.0, what=f"{n} executions to end")


def test_percentiles_and_judging_by_hand() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert percentile([], 95) == 0.0
    now = utcnow()
    empty = compute("ship", [], now - timedelta(minutes=5), now)
    verdict = judge(empty, Thresholds(min_executions=1))
    assert verdict.level is HealthLevel.HEALTHY and "too few" in verdict.reason
    slow = Thresholds(min_executions=0, degraded_p95_seconds=0.5, critical_p95_seconds=0.0)
    assert judge(empty, slow).level is HealthLevel.HEALTHY


async def test_stats_match_a_hand_count(rig: tuple[Engine, Switch]) -> None:
    engine, switch = rig
    await engine.create_action(Caller(), _charge())
    await _run(engine, 6)
    switch.failing = True
    await _run(engine, 2)
    stats = await engine.get_action_stats(Caller(), ADMIN_TENANT, "charge", None, None)
    assert (stats.count, stats.succeeded, stats.failed, stats.cancelled) == (8, 6, 2, 0)
    assert stats.success_rate == pytest.approx(6 / 8)
    assert stats.last_error is not None and stats.last_error.type == "PaymentDeclined"
    assert 0 <= stats.p50_seconds <= stats.p95_seconds <= stats.p99_seconds
    assert stats.throughput == pytest.approx(8 / 3600)
    total, actions, health = await engine.get_overview(Caller(), ADMIN_TENANT, None, None)
    assert total.count == 8 and [a.action for a in actions] == ["charge"]
    assert [h.action for h in health] == ["charge"]


async def test_failing_action_degrades_then_turns_critical_then_recovers(rig: tuple[Engine, Switch]) -> None:
    engine, switch = rig
    await engine.create_action(Caller(), _charge())
    pager = Action(
        name="pager",
        trigger=Trigger(["neoactions.alert.*"]),
        handler=HandlerSpec("switch", {"pager": True}),
        tenant="admin",
    )
    await engine.create_action(Caller(), pager)
    thresholds = Thresholds(window_seconds=600, min_executions=4, degraded_error_rate=0.25, critical_error_rate=0.5)
    loop = AlertLoop(
        engine.store, lambda t, events: engine.publisher.publish(t, events), engine.tenant_slugs, thresholds, 1
    )

    async def levels() -> list[str]:
        return [e.type.rsplit(".", 1)[1] for e in await loop.evaluate(ADMIN_TENANT)]

    await _run(engine, 3)
    assert await levels() == []  # too few to judge
    switch.failing = True
    await _run(engine, 1)  # 1 of 4 failed: 25 %
    assert await levels() == ["action_degraded"]
    assert await levels() == []  # once per transition
    await _run(engine, 3)  # 4 of 7: 57 %
    assert await levels() == ["action_critical"]
    assert await levels() == []
    health = await engine.get_action_health(Caller(), ADMIN_TENANT, "charge")
    assert health.level is HealthLevel.CRITICAL and "error rate 57% (4 of 7 failed)" in health.reason
    switch.failing = False
    await _run(engine, 13)  # 4 of 20: 20 %
    assert await levels() == ["action_recovered"]
    assert await levels() == []

    page = await engine.store.list_events(ADMIN_TENANT, EventFilter(type_pattern="neoactions.alert.*"), 10)
    alerts = list(reversed(page.items))
    assert [(e.type, e.subject, e.data["level"]) for e in alerts] == [
        ("neoactions.alert.action_degraded", "charge", "degraded"),
        ("neoactions.alert.action_critical", "charge", "critical"),
        ("neoactions.alert.action_recovered", "charge", "healthy"),
    ]
    assert alerts[1].data["previous_level"] == "degraded" and alerts[1].data["last_error"]["type"] == "PaymentDeclined"
    # an ordinary action subscribed to the alerts ran once per alert
    await eventually(lambda: len(switch.alerts) == 3, within=10.0)
    assert [a["type"] for a in switch.alerts] == [e.type for e in alerts]
    pager_runs = (await engine.get_action_stats(Caller(), ADMIN_TENANT, "pager", None, None)).succeeded
    assert pager_runs == 3


async def test_a_second_process_evaluating_the_same_transition_publishes_nothing_new(
    rig: tuple[Engine, Switch],
) -> None:
    engine, switch = rig
    await engine.create_action(Caller(), _charge())
    switch.failing = True
    await _run(engine, 4)
    thresholds = Thresholds(window_seconds=600, min_executions=4)

    def loop() -> AlertLoop:
        return AlertLoop(
            engine.store, lambda t, events: engine.publisher.publish(t, events), engine.tenant_slugs, thresholds, 1
        )

    now = utcnow()
    first, second = loop(), loop()
    # both judged before either published (the race of two processes): one event is stored
    previous = await second.last_levels(ADMIN_TENANT)
    assert await first.evaluate(ADMIN_TENANT, now)
    second.last_levels = lambda tenant: _same(previous)  # type: ignore[method-assign]
    await second.evaluate(ADMIN_TENANT, now)
    page = await engine.store.list_events(ADMIN_TENANT, EventFilter(type_pattern="neoactions.alert.*"), 10)
    assert [e.type for e in page.items] == ["neoactions.alert.action_critical"]


async def _same(levels: dict[str, HealthLevel]) -> dict[str, HealthLevel]:
    return levels
