"""Metrics kept in the process and read at each scrape: counters and histograms come out in
the Prometheus text format as counted; action names are capped; breaker states are gauges."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from neoactions.domain.model import Attempt, Execution, ExecutionStatus
from neoactions.server.flow.inprocess import InProcessFlowControl
from neoactions.server.queue import QueueItem
from neoactions.server.queue.redisstream import RedisStreamQueue
from neoactions.server.telemetry import metrics
from neoactions.server.telemetry.setup import _sample_breakers, _sample_queue
from tests.conftest import REDIS_URL, eventually, require_redis


@pytest.fixture
def registry() -> Iterator[Any]:
    provider, registry = metrics.prometheus_provider()
    metrics.install(provider, action_labels=True, max_actions=2, registry=registry)
    try:
        yield registry
    finally:
        metrics.uninstall()


def samples(registry: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _execution(action: str) -> Execution:
    return Execution(
        id="x", tenant="shop", action_id="", action_name=action, action_version=1, input={}, handler_type="python"
    )


def test_counts_histograms_and_the_action_cap(registry: Any) -> None:
    for action, seconds in (("ship", 0.003), ("ship", 0.2), ("bill", 7.0), ("third", 0.001)):
        ex = _execution(action)
        attempt = Attempt(number=1, runner="python", status=ExecutionStatus.SUCCEEDED)
        attempt.finished_at = attempt.started_at + timedelta(seconds=seconds)
        metrics.attempt_finished(ex, attempt, "succeeded", final=True)
    metrics.published("shop", 4)
    got = samples(registry)

    def one(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    base = {"tenant": "shop", "handler_type": "python"}
    assert one("neoactions_events_published_total", tenant="shop") == 4
    assert one("neoactions_executions_total", **base, action="ship", status="succeeded") == 2
    assert one("neoactions_executions_total", **base, action="other", status="succeeded") == 1  # past the cap of 2
    hist = {**base, "action": "ship", "outcome": "succeeded"}
    assert one("neoactions_attempt_duration_seconds_count", **hist) == 2
    assert one("neoactions_attempt_duration_seconds_sum", **hist) == pytest.approx(0.203)
    assert one("neoactions_attempt_duration_seconds_bucket", **hist, le="0.005") == 1
    assert one("neoactions_attempt_duration_seconds_bucket", **hist, le="0.25") == 2
    assert one("neoactions_attempt_duration_seconds_bucket", **hist, le="+Inf") == 2


async def test_breaker_states_are_gauges(registry: Any) -> None:
    flow = InProcessFlowControl()
    for _ in range(5):
        await flow.record_outcome("api.example.com", False)
    await flow.record_outcome("ok.example.com", True)
    task = asyncio.create_task(_sample_breakers(SimpleNamespace(flow=flow)))  # type: ignore[arg-type]
    try:
        await eventually(
            lambda: ("neoactions_breaker_state", frozenset({("target", "api.example.com")})) in samples(registry)
        )
    finally:
        task.cancel()
    got = samples(registry)
    assert got[("neoactions_breaker_state", frozenset({("target", "api.example.com")}))] == 2


async def test_queue_depth_and_pending_from_redis_streams(registry: Any) -> None:
    require_redis()
    prefix = f"neoactions_test_{uuid.uuid4().hex[:10]}"
    queue = RedisStreamQueue(REDIS_URL, prefix)
    await queue.open()

    async def tenants() -> list[str]:
        return ["shop"]

    try:
        await queue.enqueue([QueueItem("shop", f"x{i}", 2) for i in range(3)])
        [_] = await queue.consume("worker-1", 1)  # one delivered, not acknowledged
        task = asyncio.create_task(_sample_queue(SimpleNamespace(queue=queue, tenant_slugs=tenants)))  # type: ignore[arg-type]
        try:
            await eventually(lambda: ("neoactions_queue_depth", frozenset({("tenant", "shop")})) in samples(registry))
        finally:
            task.cancel()
        got = samples(registry)
        assert got[("neoactions_queue_depth", frozenset({("tenant", "shop")}))] == 2
        assert got[("neoactions_queue_pending", frozenset({("tenant", "shop")}))] == 1
    finally:
        await queue.delete_all()
        await queue.close()
