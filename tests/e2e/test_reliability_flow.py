"""Flow control end to end, across worker processes sharing Redis: (2) ``max_concurrency``
holds across three workers and its slots come back after a worker is killed; (3) a rate
limit of 60/minute holds (tolerance: none — never more than 60 starts in the window);
(4) a circuit breaker opens after failures, delays instead of failing, and closes after a
half-open success."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from neoactions.client import authorized_channel
from neoactions.server.flow import BreakerState, FlowControlConfig, breaker_target
from neoactions.server.flow.redis_flow import RedisFlowControl
from neoactions.v1 import actions_pb2_grpc, events_pb2, events_pb2_grpc
from tests.conftest import REDIS_URL
from tests.e2e.cluster import Cluster, status_counts, wait_for
from tests.e2e.test_pipeline import action
from tests.e2e.test_reliability_queued import database_url, sink_lines  # noqa: F401 - the fixture

NO_BREAKER = {"breaker": {"failure_threshold": 0}}


async def publish(target: str, event_type: str, n: int) -> None:
    async with authorized_channel(target) as ch:
        await events_pb2_grpc.EventServiceStub(ch).PublishEvents(
            events_pb2.PublishEventsRequest(
                parent="tenants/admin",
                events=[events_pb2.Event(type=event_type, data_json=json.dumps({"n": i})) for i in range(n)],
            )
        )


async def create(target: str, request: object) -> None:
    async with authorized_channel(target) as ch:
        await actions_pb2_grpc.ActionServiceStub(ch).CreateAction(request)


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.slow
async def test_max_concurrency_holds_across_workers_and_slots_return(
    database_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    sink = tmp_path / "sink.csv"
    cluster = Cluster(database_url, tmp_path, workers=3, flow_control=NO_BREAKER)
    cluster.start()
    try:
        await create(
            cluster.api.target,
            action(
                "slotted",
                ["jobs.slotted"],
                "shop.reliability:count",
                config={"sink": str(sink), "sleep": 0.4, "log_end": True},
                execution_mode="EXECUTION_MODE_QUEUED",
                max_concurrency=2,
                timeout_seconds=2,
            ),
        )
        await publish(cluster.api.target, "jobs.slotted", 16)

        async def some_ran() -> bool:
            return sink.exists() and sum(1 for line in sink_lines(sink) if line[5] == "end") >= 4

        await wait_for(some_ran, within=60)
        cluster.workers[1].kill()  # its slots come back when its flow leases expire

        async def all_done() -> bool:
            return (await status_counts(database_url)).get("succeeded", 0) == 16

        await wait_for(all_done, within=120)
    finally:
        cluster.stop()
    starts: dict[tuple[str, str], float] = {}
    intervals: list[tuple[float, float]] = []
    for execution_id, _, attempt, _, at, kind in sink_lines(sink):
        if kind == "start":
            starts[(execution_id, attempt)] = float(at)
        else:
            intervals.append((starts[(execution_id, attempt)], float(at)))
    assert len(intervals) >= 16
    assert peak_overlap(intervals) == 2, "never more than max_concurrency at once, and the limit was used"


@pytest.mark.slow
async def test_rate_limit_of_60_per_minute_holds(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    sink = tmp_path / "sink.csv"
    cluster = Cluster(database_url, tmp_path, workers=3, flow_control=NO_BREAKER)
    cluster.start()
    try:
        await create(
            cluster.api.target,
            action(
                "limited",
                ["jobs.limited"],
                "shop.reliability:count",
                config={"sink": str(sink), "sleep": 0},
                rate_limit={"per_minute": 60},
            ),
        )
        await publish(cluster.api.target, "jobs.limited", 80)

        async def sixty_ran() -> bool:
            return sink.exists() and len(sink_lines(sink)) >= 60

        await wait_for(sixty_ran, within=60)
        # well inside the minute: the other 20 wait — delayed, with no attempt spent
        await wait_for(lambda: _settled(database_url), within=10)
        counts = await status_counts(database_url)
    finally:
        cluster.stop()
    runs = sink_lines(sink)
    first = min(float(line[4]) for line in runs)
    in_window = [line for line in runs if float(line[4]) < first + 60]
    assert len(in_window) == 60, len(in_window)
    assert counts.get("succeeded", 0) == 60 and counts.get("pending", 0) + counts.get("scheduled", 0) == 20
    conn = await asyncpg.connect(database_url)
    try:
        waiting = await conn.fetch("SELECT attempt_count FROM admin.executions WHERE status <> 'succeeded'")
    finally:
        await conn.close()
    assert {r["attempt_count"] for r in waiting} == {0}


async def _settled(url: str) -> bool:
    counts = await status_counts(url)
    return counts.get("running", 0) == 0 and counts.get("succeeded", 0) >= 60


@pytest.mark.slow
async def test_breaker_opens_delays_and_closes_after_a_probe(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    flag = tmp_path / "healthy"
    breaker = {"failure_threshold": 3, "cooldown_seconds": 3, "window_seconds": 60}
    cluster = Cluster(database_url, tmp_path, workers=2, flow_control={"breaker": breaker})
    config = {"function": "shop.reliability:fail_until", "flag": str(flag)}
    target = breaker_target("python", config)
    flow = RedisFlowControl.from_url(
        REDIS_URL, FlowControlConfig.from_mapping({"key_prefix": f"{cluster.prefix}:flow", "breaker": breaker})
    )
    cluster.start()
    try:
        await create(
            cluster.api.target,
            action(
                "guarded",
                ["jobs.guarded"],
                "shop.reliability:fail_until",
                config={"flag": str(flag)},
                execution_mode="EXECUTION_MODE_QUEUED",
                retry_policy={"max_retries": 20, "backoff": "fixed", "initial_delay_ms": 100, "jitter": False},
            ),
        )
        await publish(cluster.api.target, "jobs.guarded", 1)

        async def opened() -> bool:
            return await flow.breaker_state(target) is BreakerState.OPEN

        await wait_for(opened, within=30, every=0.05)
        flag.write_text("ok")  # the target recovers while the breaker is open

        async def done() -> bool:
            return (await status_counts(database_url)).get("succeeded", 0) == 1

        await wait_for(done, within=30)
        assert await flow.breaker_state(target) is BreakerState.CLOSED
    finally:
        await flow.aclose()
        cluster.stop()
    conn = await asyncpg.connect(database_url)
    try:
        attempts = await conn.fetch(
            "SELECT number, status, started_at, finished_at FROM admin.attempts ORDER BY number"
        )
    finally:
        await conn.close()
    # three failures opened it; the open breaker delayed the execution instead of burning its retries
    assert [(a["number"], a["status"]) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "succeeded"),
    ]
    waited = (attempts[3]["started_at"] - attempts[2]["finished_at"]).total_seconds()
    assert waited >= 2.5, waited  # the cool-down (3 s) less the breaker window's granularity
