"""The FlowControl contract: every test runs against InProcessFlowControl and RedisFlowControl.

Time is a ManualClock wherever the exact value of ``retry_after`` matters (Redis
gets it as the script's "now"); the churn test uses real clocks and polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from neoactions.domain.model import RateLimit
from neoactions.server.flow import (
    AdmissionRequest,
    Admitted,
    BreakerConfig,
    BreakerState,
    FlowControl,
    FlowControlConfig,
    Lease,
    RefusalReason,
    Refused,
)
from neoactions.server.flow.redis_flow import CLOSED_TRUST_SECONDS
from tests.conftest import require_redis
from tests.integration.flow_backends import FlowBackend, ManualClock

TENANT = "acme"
TARGET = "http:api.example.com"


@pytest.fixture(params=["inprocess", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[FlowBackend]:
    if request.param == "redis":
        require_redis()
    b = FlowBackend(request.param)
    try:
        yield b
    finally:
        await b.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def req(n: int = 0, **kw: object) -> AdmissionRequest:
    fields: dict[str, object] = {"tenant": TENANT, "action_name": "notify", "execution_id": f"ex-{n}"}
    fields.update(kw)
    return AdmissionRequest(**fields)  # type: ignore[arg-type]


async def admitted(flow: FlowControl, request: AdmissionRequest) -> Lease:
    adm = await flow.admit(request)
    assert isinstance(adm, Admitted), adm
    return adm.lease


async def refused(flow: FlowControl, request: AdmissionRequest) -> Refused:
    adm = await flow.admit(request)
    assert isinstance(adm, Refused), adm
    return adm


def expect(refusal: Refused, reason: RefusalReason, seconds: float) -> None:
    assert refusal.reason is reason
    assert refusal.retry_after_seconds == pytest.approx(seconds, abs=1e-6)


# --- concurrency -------------------------------------------------------------------


async def test_max_concurrency_holds_under_50_concurrent_admits(backend: FlowBackend, clock: ManualClock) -> None:
    workers = backend.workers(5, FlowControlConfig(busy_retry_seconds=2.0), clock)
    results = await asyncio.gather(
        *(workers[i % 5].admit(req(i, max_concurrency=2, lease_seconds=30)) for i in range(50))
    )
    winners = [r for r in results if isinstance(r, Admitted)]
    losers = [r for r in results if isinstance(r, Refused)]
    assert len(winners) == 2
    assert len(losers) == 48
    # nobody releases: the first slot frees by itself when the earliest lease expires (30 s),
    # so the hint is the poll interval, which is sooner
    assert {(r.reason, r.retry_after_seconds) for r in losers} == {(RefusalReason.MAX_CONCURRENCY, 2.0)}


async def test_max_concurrency_peak_under_churn_across_workers(backend: FlowBackend) -> None:
    """50 executions on 5 workers with real clocks: never more than 2 run at once, and all finish."""
    workers = backend.workers(5, FlowControlConfig(busy_retry_seconds=0.005, lease_ttl_seconds=30))
    running = peak = done = 0

    async def execution(i: int) -> None:
        nonlocal running, peak, done
        flow = workers[i % 5]
        while True:
            adm = await flow.admit(req(i, max_concurrency=2))
            if isinstance(adm, Admitted):
                break
            assert adm.reason is RefusalReason.MAX_CONCURRENCY
            assert 0 < adm.retry_after_seconds <= 0.005
            await asyncio.sleep(adm.retry_after_seconds)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)  # the "attempt"
        running -= 1
        await flow.release(adm.lease)
        done += 1

    await asyncio.gather(*(execution(i) for i in range(50)))
    assert done == 50
    assert peak == 2


async def test_released_lease_returns_its_slot(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, clock=clock)
    lease = await admitted(a, req(1, max_concurrency=1))
    await refused(b, req(2, max_concurrency=1))
    await a.release(lease)
    await a.release(lease)  # repeating is harmless and frees nothing else
    second = await admitted(b, req(2, max_concurrency=1))
    assert (await refused(a, req(3, max_concurrency=1))).reason is RefusalReason.MAX_CONCURRENCY
    await b.release(second)


async def test_leases_of_a_dead_worker_expire(backend: FlowBackend, clock: ManualClock) -> None:
    dead, alive = backend.workers(2, FlowControlConfig(busy_retry_seconds=60.0), clock)
    start = clock.now
    await admitted(dead, req(1, max_concurrency=2, lease_seconds=30))
    clock.advance(5)
    await admitted(dead, req(2, max_concurrency=2, lease_seconds=30))
    # the dead worker never releases; the slot that frees first is its first lease
    refusal = await refused(alive, req(3, max_concurrency=2))
    assert refusal.reason is RefusalReason.MAX_CONCURRENCY
    assert refusal.retry_after_seconds == pytest.approx(25.0, abs=1e-6)
    clock.advance(24.999)
    await refused(alive, req(3, max_concurrency=2))
    clock.now = start + 30  # the first lease's expiry, exactly
    await admitted(alive, req(3, max_concurrency=2))
    await refused(alive, req(4, max_concurrency=2))
    clock.advance(5)
    await admitted(alive, req(4, max_concurrency=2))


async def test_extend_keeps_a_long_attempt_lease(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, clock=clock)
    lease = await admitted(a, req(1, max_concurrency=1, lease_seconds=10))
    clock.advance(8)
    assert await a.extend(lease, 10)
    assert lease.expires_at == pytest.approx(clock.now + 10, abs=1e-6)
    clock.advance(8)  # past the original expiry
    await refused(b, req(2, max_concurrency=1))
    clock.advance(2)
    await admitted(b, req(2, max_concurrency=1))
    assert not await a.extend(lease, 10)  # expired: the slot went to someone else


async def test_unlimited_concurrency_admits_everything(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(clock=clock)
    leases = [await admitted(flow, req(i)) for i in range(20)]
    assert len({lease.id for lease in leases}) == 20
    assert all(lease.tenant == TENANT and lease.action_name == "notify" for lease in leases)


# --- rate limits -------------------------------------------------------------------


async def test_rate_limit_60_per_minute_then_exact_retry_after(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, clock=clock)
    limit = RateLimit(per_minute=60)
    start = clock.now
    for i in range(60):
        lease = await admitted((a, b)[i % 2], req(i, rate_limit=limit))
        await (a, b)[i % 2].release(lease)  # releasing gives back the slot, not the rate
        clock.advance(0.5)
    # now = start + 30; the oldest admission (at start) leaves the window at start + 60
    refusal = await refused(a, req(60, rate_limit=limit))
    assert refusal.reason is RefusalReason.RATE_LIMIT
    assert refusal.retry_after_seconds == pytest.approx(30.0, abs=1e-6)
    clock.advance(refusal.retry_after_seconds - 0.001)
    await refused(b, req(60, rate_limit=limit))
    clock.now = start + 60
    await admitted(b, req(60, rate_limit=limit))
    # the next token is the second admission's, made half a second after the first
    refusal = await refused(a, req(61, rate_limit=limit))
    assert refusal.retry_after_seconds == pytest.approx(0.5, abs=1e-6)


async def test_refusals_do_not_consume_the_rate(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(clock=clock)
    limit = RateLimit(per_minute=2)
    await admitted(flow, req(1, rate_limit=limit))
    await admitted(flow, req(2, rate_limit=limit))
    for _ in range(10):
        await refused(flow, req(3, rate_limit=limit))
    clock.advance(60)
    await admitted(flow, req(3, rate_limit=limit))
    await admitted(flow, req(4, rate_limit=limit))


async def test_per_hour_limit(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(clock=clock)
    limit = RateLimit(per_minute=10, per_hour=3)
    start = clock.now
    for i in range(3):
        await admitted(flow, req(i, rate_limit=limit))
        clock.advance(120)
    refusal = await refused(flow, req(3, rate_limit=limit))
    assert refusal.reason is RefusalReason.RATE_LIMIT
    assert refusal.retry_after_seconds == pytest.approx(3600 - 360, abs=1e-6)
    clock.now = start + 3600
    await admitted(flow, req(3, rate_limit=limit))


async def test_both_windows_bind_and_the_longer_wait_wins(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(clock=clock)
    limit = RateLimit(per_minute=2, per_hour=2)
    await admitted(flow, req(1, rate_limit=limit))
    await admitted(flow, req(2, rate_limit=limit))
    refusal = await refused(flow, req(3, rate_limit=limit))
    assert refusal.retry_after_seconds == pytest.approx(3600, abs=1e-6)


async def test_tenant_limit_is_independent_of_action_limit(backend: FlowBackend, clock: ManualClock) -> None:
    config = FlowControlConfig(
        tenant_rate_limit=RateLimit(per_minute=5), tenant_rate_limits={"big": RateLimit(per_minute=100)}
    )
    a, b = backend.workers(2, config, clock)
    for i in range(3):
        await admitted(a, req(i, action_name="send", rate_limit=RateLimit(per_minute=3)))
        clock.advance(1)
    # the action's own limit refuses; the refusal takes nothing from the tenant's budget
    refusal = await refused(b, req(3, action_name="send", rate_limit=RateLimit(per_minute=3)))
    assert refusal.reason is RefusalReason.RATE_LIMIT
    assert refusal.retry_after_seconds == pytest.approx(57, abs=1e-6)
    # another action of the tenant, unlimited itself, gets what is left of the tenant's 5
    await admitted(b, req(4, action_name="other"))
    await admitted(a, req(5, action_name="other"))
    refusal = await refused(b, req(6, action_name="other"))
    assert refusal.reason is RefusalReason.TENANT_RATE_LIMIT
    assert refusal.retry_after_seconds == pytest.approx(57, abs=1e-6)
    # other tenants have their own budgets; an override beats the default
    for i in range(5):
        await admitted(a, req(i, tenant="other-tenant", action_name="other"))
    await refused(a, req(5, tenant="other-tenant", action_name="other"))
    for i in range(20):
        await admitted(b, req(i, tenant="big", action_name="other"))
    # a limit passed with the request replaces the configured one
    await admitted(a, req(7, action_name="other", tenant_rate_limit=RateLimit()))


# --- circuit breaker -----------------------------------------------------------------

BREAKER = FlowControlConfig(
    busy_retry_seconds=2.0,
    breaker=BreakerConfig(failure_threshold=3, window_seconds=60, window_buckets=10, cooldown_seconds=30),
)


async def open_breaker(flow: FlowControl, target: str = TARGET) -> None:
    for _ in range(3):
        await flow.record_outcome(target, False)
    assert await flow.breaker_state(target) is BreakerState.OPEN


async def test_breaker_opens_after_failures_and_refuses(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, BREAKER, clock)
    assert await a.record_outcome(TARGET, False) is BreakerState.CLOSED
    assert await b.record_outcome(TARGET, True) is BreakerState.CLOSED
    assert await a.record_outcome(TARGET, False) is BreakerState.CLOSED
    await admitted(b, req(1, target=TARGET))
    assert await b.record_outcome(TARGET, False) is BreakerState.OPEN  # the third, from another worker
    refusal = await refused(b, req(2, target=TARGET))
    assert refusal.reason is RefusalReason.BREAKER_OPEN
    assert refusal.retry_after_seconds == pytest.approx(30, abs=1e-6)
    # a worker that saw the breaker closed may trust that for CLOSED_TRUST_SECONDS (Redis)
    clock.advance(CLOSED_TRUST_SECONDS)
    refusal = await refused(a, req(2, target=TARGET))
    assert refusal.reason is RefusalReason.BREAKER_OPEN
    assert refusal.retry_after_seconds == pytest.approx(30 - CLOSED_TRUST_SECONDS, abs=1e-6)
    clock.advance(20 - CLOSED_TRUST_SECONDS)
    assert (await refused(b, req(2, target=TARGET))).retry_after_seconds == pytest.approx(10, abs=1e-6)
    # other targets, and work with no target, are not affected
    await admitted(a, req(3, target="http:other.example.com"))
    await admitted(a, req(4))


async def test_failures_outside_the_window_do_not_open(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(BREAKER, clock)
    clock.now = 6_000_000.0  # on a bucket boundary (6 s buckets): the window is exact here
    await flow.record_outcome(TARGET, False)
    clock.advance(30)
    await flow.record_outcome(TARGET, False)
    clock.advance(36)  # the first failure is now older than the 60 s window
    assert await flow.record_outcome(TARGET, False) is BreakerState.CLOSED
    clock.advance(1)
    assert await flow.record_outcome(TARGET, False) is BreakerState.OPEN


async def test_failure_rate_threshold(backend: FlowBackend, clock: ManualClock) -> None:
    config = FlowControlConfig(
        breaker=BreakerConfig(failure_threshold=0, failure_rate_threshold=0.5, minimum_calls=4, cooldown_seconds=30)
    )
    flow = backend.worker(config, clock)
    for ok in (False, False, True):  # 2 of 3 failed, but fewer calls than the minimum
        assert await flow.record_outcome(TARGET, ok) is BreakerState.CLOSED
    # 2 of 4 = 50% reaches the threshold, but a success never opens a breaker...
    assert await flow.record_outcome(TARGET, True) is BreakerState.CLOSED
    # ...the next failure does: 3 of 5 >= 50%
    assert await flow.record_outcome(TARGET, False) is BreakerState.OPEN


async def test_half_open_admits_one_probe_at_a_time_and_closes_on_success(
    backend: FlowBackend, clock: ManualClock
) -> None:
    a, b = backend.workers(2, BREAKER, clock)
    await open_breaker(a)
    clock.advance(30)
    assert await b.breaker_state(TARGET) is BreakerState.HALF_OPEN
    probes = await asyncio.gather(*(w.admit(req(i, target=TARGET, lease_seconds=20)) for i, w in enumerate([a, b] * 5)))
    winners = [p for p in probes if isinstance(p, Admitted)]
    assert len(winners) == 1 and winners[0].lease.probe
    for p in probes:
        if isinstance(p, Refused):
            assert p.reason is RefusalReason.BREAKER_OPEN
            assert p.retry_after_seconds == pytest.approx(2.0, abs=1e-6)  # poll; the probe's lease is 20 s
    assert await b.record_outcome(TARGET, True, lease=winners[0].lease) is BreakerState.CLOSED
    await a.release(winners[0].lease)
    after = [await admitted(w, req(10 + i, target=TARGET)) for i, w in enumerate([a, b, a])]
    assert not any(lease.probe for lease in after)


async def test_probe_failure_reopens(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, BREAKER, clock)
    await open_breaker(a)
    clock.advance(31)
    probe = await admitted(b, req(1, target=TARGET))
    assert probe.probe
    clock.advance(4)
    assert await b.record_outcome(TARGET, False, lease=probe) is BreakerState.OPEN
    await b.release(probe)
    refusal = await refused(a, req(2, target=TARGET))
    assert refusal.reason is RefusalReason.BREAKER_OPEN
    assert refusal.retry_after_seconds == pytest.approx(30, abs=1e-6)  # a whole new cool-down
    clock.advance(30)
    assert (await admitted(a, req(2, target=TARGET))).probe


async def test_only_the_probe_decides_in_half_open(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(BREAKER, clock)
    straggler = await admitted(flow, req(1, target=TARGET))  # admitted before the breaker opened
    await open_breaker(flow)
    assert await flow.record_outcome(TARGET, True, lease=straggler) is BreakerState.OPEN  # cooling down
    clock.advance(30)
    probe = await admitted(flow, req(2, target=TARGET))
    assert await flow.record_outcome(TARGET, True, lease=straggler) is BreakerState.HALF_OPEN
    assert await flow.record_outcome(TARGET, False, lease=straggler) is BreakerState.HALF_OPEN
    await refused(flow, req(3, target=TARGET))  # the probe is still out
    assert await flow.record_outcome(TARGET, True, lease=probe) is BreakerState.CLOSED


async def test_probe_slot_returns_on_release_and_on_expiry(backend: FlowBackend, clock: ManualClock) -> None:
    dead, alive = backend.workers(2, BREAKER, clock)
    await open_breaker(alive)
    clock.advance(30)
    # a probe given back without an outcome (e.g. shutdown) lets the next admission probe
    probe = await admitted(alive, req(1, target=TARGET))
    await alive.release(probe)
    # a probe whose worker dies holds the slot only until its lease expires
    await admitted(dead, req(2, target=TARGET, lease_seconds=10))
    refusal = await refused(alive, req(3, target=TARGET))
    assert refusal.retry_after_seconds == pytest.approx(2.0, abs=1e-6)
    clock.advance(9)
    refusal = await refused(alive, req(3, target=TARGET))
    assert refusal.retry_after_seconds == pytest.approx(1.0, abs=1e-6)  # never past the probe's expiry
    clock.advance(1)
    again = await admitted(alive, req(3, target=TARGET))
    assert again.probe
    assert await alive.extend(again, 50)
    clock.advance(40)  # extended: still the outstanding probe
    await refused(dead, req(4, target=TARGET))


async def test_finish_counts_the_outcome_and_returns_the_slot(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, BREAKER, clock)
    held = [await admitted(a, req(i, target=TARGET, max_concurrency=3)) for i in range(3)]
    await refused(b, req(9, target=TARGET, max_concurrency=3))
    await a.finish(held[0], True)
    await a.finish(held[1], False)
    assert await b.breaker_state(TARGET) is BreakerState.CLOSED
    # both slots came back; the failure was counted: two more open the breaker
    await admitted(b, req(10, target=TARGET, max_concurrency=3))
    await admitted(b, req(11, target=TARGET, max_concurrency=3))
    await a.finish(held[2], False)
    assert await b.record_outcome(TARGET, False) is BreakerState.OPEN


async def test_finish_of_the_probe_decides_and_frees_the_probe(backend: FlowBackend, clock: ManualClock) -> None:
    a, b = backend.workers(2, BREAKER, clock)
    await open_breaker(a)
    clock.advance(30)
    probe = await admitted(b, req(1, target=TARGET))
    assert probe.probe
    await b.finish(probe, False)  # the probe failed: a whole new cool-down
    refusal = await refused(a, req(2, target=TARGET))
    assert refusal.retry_after_seconds == pytest.approx(30, abs=1e-6)
    clock.advance(30)
    probe = await admitted(a, req(3, target=TARGET))
    assert probe.probe
    await a.finish(probe, True)  # the probe succeeded: closed, nothing held
    assert await b.breaker_state(TARGET) is BreakerState.CLOSED
    assert not (await admitted(b, req(4, target=TARGET))).probe


async def test_admission_is_all_or_nothing(backend: FlowBackend, clock: ManualClock) -> None:
    """A half-open breaker's probe is not taken when another limit refuses the same admission."""
    flow = backend.worker(BREAKER, clock)
    holder = await admitted(flow, req(1, target=TARGET, max_concurrency=1))
    await open_breaker(flow)
    clock.advance(30)
    refusal = await refused(flow, req(2, target=TARGET, max_concurrency=1))
    assert refusal.reason is RefusalReason.MAX_CONCURRENCY
    await flow.release(holder)
    assert (await admitted(flow, req(2, target=TARGET, max_concurrency=1))).probe


async def test_the_longest_wait_binds(backend: FlowBackend, clock: ManualClock) -> None:
    flow = backend.worker(BREAKER, clock)
    limit = RateLimit(per_minute=1)
    await admitted(flow, req(1, target=TARGET, rate_limit=limit))
    clock.advance(20)
    await open_breaker(flow)  # open until +30; the rate frees at +40 from now
    refusal = await refused(flow, req(2, target=TARGET, rate_limit=limit))
    expect(refusal, RefusalReason.RATE_LIMIT, 40)
    clock.advance(35)
    refusal = await refused(flow, req(2, target=TARGET, rate_limit=limit))
    expect(refusal, RefusalReason.RATE_LIMIT, 5)


async def test_a_lowered_limit_waits_until_enough_admissions_leave_the_window(
    backend: FlowBackend, clock: ManualClock
) -> None:
    flow = backend.worker(FlowControlConfig(busy_retry_seconds=100.0), clock)
    start = clock.now
    for i in range(5):
        await admitted(flow, req(i, rate_limit=RateLimit(per_minute=5), max_concurrency=5, lease_seconds=100))
        clock.advance(10)
    # 5 admissions at +0..+40 and now +50; with a limit of 3, three must remain after the
    # third oldest (+20) leaves, i.e. at +80
    refusal = await refused(flow, req(5, rate_limit=RateLimit(per_minute=3)))
    expect(refusal, RefusalReason.RATE_LIMIT, 30)
    # likewise 5 live leases (expiring at +100..+140) against a concurrency of 3 free a slot at +120
    refusal = await refused(flow, req(5, max_concurrency=3))
    expect(refusal, RefusalReason.MAX_CONCURRENCY, 70)
    clock.now = start + 120
    await admitted(flow, req(5, max_concurrency=3))
