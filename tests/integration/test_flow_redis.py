"""RedisFlowControl beyond the shared contract: the server clock, keys, failures of Redis itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from neoactions.domain.errors import Unavailable
from neoactions.domain.model import RateLimit
from neoactions.server.flow import (
    AdmissionRequest,
    Admitted,
    BreakerConfig,
    BreakerState,
    FlowControlConfig,
    RefusalReason,
    Refused,
    create_flow_control,
)
from neoactions.server.flow.redis_flow import CLOSED_TRUST_SECONDS, RedisFlowControl
from tests.conftest import REDIS_URL, require_redis
from tests.integration.flow_backends import ManualClock, delete_prefix, unique_prefix


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    require_redis()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    p = unique_prefix()
    try:
        yield p
    finally:
        await delete_prefix(redis_client, p)


def request(n: int, **kw: object) -> AdmissionRequest:
    fields: dict[str, object] = {"tenant": "acme", "action_name": "notify", "execution_id": f"ex-{n}"}
    fields.update(kw)
    return AdmissionRequest(**fields)  # type: ignore[arg-type]


async def test_server_clock_leases_expire_in_real_time(redis_client: Redis, prefix: str) -> None:
    """Without an injected clock the Redis server's TIME is the one clock of every worker."""
    config = FlowControlConfig(key_prefix=prefix, busy_retry_seconds=5.0)
    dead, alive = RedisFlowControl(redis_client, config), RedisFlowControl(redis_client, config)
    first = await dead.admit(request(1, max_concurrency=1, lease_seconds=0.3))
    assert isinstance(first, Admitted)
    # the expiry is on the server's epoch clock
    assert first.lease.expires_at == pytest.approx(time.time() + 0.3, abs=2.0)
    refusal = await alive.admit(request(2, max_concurrency=1))
    assert isinstance(refusal, Refused) and refusal.reason is RefusalReason.MAX_CONCURRENCY
    assert 0 < refusal.retry_after_seconds <= 0.3  # the lease's expiry, sooner than the poll interval
    async with asyncio.timeout(10):
        while True:
            adm = await alive.admit(request(2, max_concurrency=1))
            if isinstance(adm, Admitted):
                break
            await asyncio.sleep(adm.retry_after_seconds)


async def test_keys_live_under_the_prefix_and_expire(redis_client: Redis, prefix: str) -> None:
    flow = RedisFlowControl(redis_client, FlowControlConfig(key_prefix=prefix))
    adm = await flow.admit(
        request(1, rate_limit=RateLimit(per_minute=5, per_hour=50), tenant_rate_limit=RateLimit(per_hour=9))
    )
    assert isinstance(adm, Admitted)
    await flow.record_outcome("http:api.example.com", False)
    keys = sorted([k async for k in redis_client.scan_iter(match=f"{prefix}:*")])
    assert keys == sorted(
        [
            f"{prefix}:conc:acme:notify",
            f"{prefix}:rate:action:acme:notify:60s",
            f"{prefix}:rate:action:acme:notify:3600s",
            f"{prefix}:rate:tenant:acme:3600s",
            f"{prefix}:breaker:http%3Aapi.example.com",
        ]
    )
    for key in keys:
        assert await redis_client.pttl(key) > 0, key  # nothing is left behind forever
    await flow.release(adm.lease)
    assert await redis_client.zcard(f"{prefix}:conc:acme:notify") == 0


async def test_names_with_separators_do_not_collide(redis_client: Redis, prefix: str) -> None:
    flow = RedisFlowControl(redis_client, FlowControlConfig(key_prefix=prefix))
    one = await flow.admit(request(1, tenant="a:b", action_name="c", max_concurrency=1))
    two = await flow.admit(request(2, tenant="a", action_name="b:c", max_concurrency=1))
    assert isinstance(one, Admitted) and isinstance(two, Admitted)


async def test_unreachable_redis_is_unavailable() -> None:
    flow = RedisFlowControl.from_url("redis://127.0.0.1:1/0", FlowControlConfig(key_prefix=unique_prefix()))
    try:
        with pytest.raises(Unavailable):
            await flow.admit(request(1, max_concurrency=1))
        with pytest.raises(Unavailable):
            await flow.record_outcome("http:x", False)
    finally:
        await flow.aclose()


async def test_factory_builds_the_shared_implementation_from_a_url(prefix: str) -> None:
    flow = create_flow_control(REDIS_URL, {"key_prefix": prefix, "tenant_rate_limit": {"per_minute": 1}})
    try:
        assert isinstance(flow, RedisFlowControl)
        assert isinstance(await flow.admit(request(1)), Admitted)
        refusal = await flow.admit(request(2))
        assert isinstance(refusal, Refused) and refusal.reason is RefusalReason.TENANT_RATE_LIMIT
    finally:
        await flow.aclose()


async def test_concurrent_calls_share_pipelines_and_survive_a_script_flush(redis_client: Redis, prefix: str) -> None:
    """Many attempts admitted at once: each gets its own answer (the limit holds exactly), and
    scripts Redis forgot (SCRIPT FLUSH, as after a restart) are loaded again."""
    flow = RedisFlowControl(redis_client, FlowControlConfig(key_prefix=prefix))
    await redis_client.script_flush()
    results = await asyncio.gather(*(flow.admit(request(n, max_concurrency=7)) for n in range(40)))
    admitted = [r.lease for r in results if isinstance(r, Admitted)]
    assert len(admitted) == 7
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(refused) == 33 and all(r.reason is RefusalReason.MAX_CONCURRENCY for r in refused)
    await asyncio.gather(*(flow.release(lease) for lease in admitted))
    again = await asyncio.gather(*(flow.admit(request(100 + n, max_concurrency=7)) for n in range(7)))
    assert all(isinstance(r, Admitted) for r in again)


async def test_attempts_with_no_limit_skip_redis_while_the_breaker_is_known_closed(
    redis_client: Redis, prefix: str
) -> None:
    clock = ManualClock()
    config = FlowControlConfig(key_prefix=prefix, breaker=BreakerConfig(failure_threshold=2, cooldown_seconds=30))
    a, b = RedisFlowControl(redis_client, config, clock=clock), RedisFlowControl(redis_client, config, clock=clock)
    target = "python:shop.handlers:alert"
    first = await a.admit(request(1, target=target))
    assert isinstance(first, Admitted) and first.lease.taken  # asked Redis; saw the breaker closed
    calls = 0
    send = a._pipeline

    async def counting(batch: Any) -> list[Any]:
        nonlocal calls
        calls += len(batch)
        return await send(batch)

    a._pipeline = counting  # type: ignore[method-assign]
    trusted = await a.admit(request(2, target=target))
    assert isinstance(trusted, Admitted) and not trusted.lease.taken
    await a.finish(trusted.lease, True)  # a success changes nothing: no call either
    await a.release(trusted.lease)
    assert calls == 0
    limited = await a.admit(request(3, target=target, max_concurrency=5))  # a limit: always Redis
    assert isinstance(limited, Admitted) and limited.lease.taken and calls == 1

    # another worker opens the breaker: a trusts what it saw for CLOSED_TRUST_SECONDS at most...
    await b.record_outcome(target, False)
    assert await b.record_outcome(target, False) is BreakerState.OPEN
    assert isinstance(await a.admit(request(4, target=target)), Admitted)
    clock.advance(CLOSED_TRUST_SECONDS)
    refused = await a.admit(request(5, target=target))
    assert isinstance(refused, Refused) and refused.reason is RefusalReason.BREAKER_OPEN

    # ...and a failure of an attempt admitted without Redis still counts, and is seen at once
    clock.advance(30)
    probe = await a.admit(request(6, target=target))
    assert isinstance(probe, Admitted) and probe.lease.probe
    await a.finish(probe.lease, True)  # closed again
    assert await b.breaker_state(target) is BreakerState.CLOSED
    admitted = await b.admit(request(7, target=target))
    assert isinstance(admitted, Admitted) and admitted.lease.taken  # b had seen it open: asks
    trusted = await b.admit(request(8, target=target))
    assert isinstance(trusted, Admitted) and not trusted.lease.taken
    await b.finish(trusted.lease, False)
    # a failure ends the trust: while the target fails, every admission asks Redis
    checked = await b.admit(request(9, target=target))
    assert isinstance(checked, Admitted) and checked.lease.taken
    await b.finish(checked.lease, False)
    assert await a.breaker_state(target) is BreakerState.OPEN
    after = await b.admit(request(10, target=target))
    assert isinstance(after, Refused)
