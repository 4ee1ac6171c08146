"""Two deployments sharing one Redis database share nothing: every key carries its prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from neoactions.domain.model import RateLimit
from neoactions.server.flow import AdmissionRequest, Admitted, BreakerState, RefusalReason, Refused, create_flow_control
from neoactions.server.flow.port import FlowControl
from neoactions.server.queue.port import QueueItem
from neoactions.server.queue.redisstream import RedisStreamQueue
from tests.conftest import REDIS_URL, require_redis


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    require_redis()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefixes(redis_client: Redis) -> AsyncIterator[tuple[str, str]]:
    run = uuid.uuid4().hex[:12]
    pair = (f"deploy-a-{run}", f"deploy-b-{run}")
    try:
        yield pair
    finally:
        for prefix in pair:
            keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:*", count=500)]
            if keys:
                await redis_client.delete(*keys)


def flow_of(prefix: str) -> FlowControl:
    # the service's own wiring: the flow_control section without a key_prefix, and the deployment prefix
    return create_flow_control(REDIS_URL, {"breaker": {"failure_threshold": 1, "cooldown_seconds": 60}}, prefix=prefix)


def request(n: int, tenant: str, target: str, **kw: object) -> AdmissionRequest:
    return AdmissionRequest(tenant=tenant, action_name="notify", execution_id=f"ex-{n}", target=target, **kw)  # type: ignore[arg-type]


def test_flow_keys_default_under_the_deployment_prefix() -> None:
    assert create_flow_control("", {}, prefix="blue").config.key_prefix == "blue:flow"
    assert create_flow_control("", {"key_prefix": "{x}:f"}, prefix="blue").config.key_prefix == "{x}:f"
    assert create_flow_control().config.key_prefix == "neoactions:flow"


async def test_two_prefixes_side_by_side_share_no_state(redis_client: Redis, prefixes: tuple[str, str]) -> None:
    a_prefix, b_prefix = prefixes
    token = uuid.uuid4().hex  # names only this test uses, to find every key it caused
    tenant, target = f"t{token}", f"http:{token}.example"
    a, b = flow_of(a_prefix), flow_of(b_prefix)
    a_queue, b_queue = RedisStreamQueue(REDIS_URL, a_prefix), RedisStreamQueue(REDIS_URL, b_prefix)
    await a_queue.open()
    await b_queue.open()
    try:
        # a breaker opened by one deployment leaves the other's closed
        assert await a.record_outcome(target, False) is BreakerState.OPEN
        refused = await a.admit(request(1, tenant, target))
        assert isinstance(refused, Refused) and refused.reason is RefusalReason.BREAKER_OPEN
        admitted = await b.admit(request(2, tenant, target))
        assert isinstance(admitted, Admitted)
        assert await b.breaker_state(target) is BreakerState.CLOSED
        await b.release(admitted.lease)

        # concurrency slots and rate windows are per deployment too: each admits its one
        limits = {"max_concurrency": 1, "rate_limit": RateLimit(per_minute=1)}
        other = f"python:{token}"
        assert isinstance(await a.admit(request(3, tenant, other, **limits)), Admitted)
        assert isinstance(await b.admit(request(4, tenant, other, **limits)), Admitted)
        again = await a.admit(request(5, tenant, other, **limits))
        assert isinstance(again, Refused) and again.reason in (RefusalReason.MAX_CONCURRENCY, RefusalReason.RATE_LIMIT)

        await a_queue.enqueue([QueueItem(tenant, "ex-a", 2)])
        await b_queue.enqueue([QueueItem(tenant, "ex-b", 2)])
        assert [d.item.execution_id for d in await a_queue.consume("w", 10, 0)] == ["ex-a"]
        assert [d.item.execution_id for d in await b_queue.consume("w", 10, 0)] == ["ex-b"]

        caused = [k async for k in redis_client.scan_iter(match=f"*{token}*", count=1000)]
        assert caused
        assert all(k.startswith((f"{a_prefix}:", f"{b_prefix}:")) for k in caused), caused
        assert any(k.startswith(f"{a_prefix}:flow:breaker:") for k in caused)
        assert any(k.startswith(f"{b_prefix}:flow:conc:") for k in caused)
    finally:
        await a.aclose()
        await b.aclose()
        await a_queue.close()
        await b_queue.close()
