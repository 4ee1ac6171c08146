"""Fair shares of a bounded worker pool: per-tenant caps and round-robin turns."""

from __future__ import annotations

import asyncio
import random

import pytest

from neoactions.sandboxes.fairshare import FairQueue, FairSlots, default_tenant_share


def test_default_share_keeps_a_worker_for_others() -> None:
    assert [default_tenant_share(n) for n in (1, 2, 3, 4, 8, 16)] == [1, 1, 2, 3, 6, 12]


def test_a_tenant_stops_at_its_cap_and_another_gets_the_free_worker() -> None:
    q: FairQueue[str] = FairQueue(capacity=2, per_tenant=1)
    assert q.request("a", "a1") == [("a", "a1")]
    assert q.request("a", "a2") == [], "a holds its share; the second worker stays free"
    assert q.request("b", "b1") == [("b", "b1")], "b is served at once"
    assert q.request("c", "c1") == []
    # a worker frees up: a waits longest but holds its share, so c gets it
    assert q.release("b") == [("c", "c1")]
    assert q.held("a") == 1 and q.waiting("a") == 1 and q.waiting() == 1
    assert q.release("a") == [("a", "a2")]


def test_waiting_tenants_take_turns_whatever_they_queued() -> None:
    q: FairQueue[str] = FairQueue(capacity=1)
    assert q.request("big", "big0") == [("big", "big0")]
    for i in range(1, 100):
        q.request("big", f"big{i}")
    q.request("small", "small0")
    q.request("small", "small1")
    order = []
    tenant = "big"
    for _ in range(6):
        ((tenant, waiter),) = q.release(tenant)
        order.append(waiter)
    assert order == ["big1", "small0", "big2", "small1", "big3", "big4"]


def test_withdrawn_waiters_are_not_granted() -> None:
    q: FairQueue[str] = FairQueue(capacity=1)
    q.request("a", "a0")
    q.request("b", "b0")
    q.request("b", "b1")
    assert q.withdraw("b", "b0") and not q.withdraw("b", "b0")
    assert q.release("a") == [("b", "b1")]
    assert not q.withdraw("b", "b1"), "granted already"
    assert q.release("b") == [] and q.total == 0


def test_release_of_a_worker_not_held_is_a_bug() -> None:
    q: FairQueue[str] = FairQueue(capacity=1)
    with pytest.raises(RuntimeError):
        q.release("a")


@pytest.mark.parametrize("seed", range(20))
def test_invariants_under_random_operations(seed: int) -> None:
    rng = random.Random(seed)
    capacity = rng.randint(1, 5)
    per_tenant = rng.randint(1, capacity)
    q: FairQueue[int] = FairQueue(capacity, per_tenant)
    holding: list[tuple[str, int]] = []
    waiting: dict[int, str] = {}
    for n in range(300):
        roll = rng.random()
        if roll < 0.5:
            tenant = rng.choice("abcd")
            waiting[n] = tenant
            granted = q.request(tenant, n)
        elif roll < 0.8 and holding:
            tenant, _ = holding.pop(rng.randrange(len(holding)))
            granted = q.release(tenant)
        elif waiting:
            w = rng.choice(list(waiting))
            assert q.withdraw(waiting.pop(w), w)
            granted = []
        else:
            continue
        for tenant, w in granted:
            assert waiting.pop(w) == tenant
            holding.append((tenant, w))
        held = {t: sum(1 for h, _ in holding if h == t) for t in "abcd"}
        assert q.total == len(holding) <= capacity
        assert all(held[t] == q.held(t) <= per_tenant for t in "abcd")
        # work-conserving: nobody who could be served waits
        if q.total < capacity:
            assert all(held[t] >= per_tenant for t in set(waiting.values()))


async def test_slots_serve_a_second_tenant_while_the_first_holds_its_share() -> None:
    slots = FairSlots(2, per_tenant=1)
    await slots.acquire("a")
    blocked = asyncio.ensure_future(slots.acquire("a"))
    await asyncio.sleep(0)
    assert not blocked.done()
    await asyncio.wait_for(slots.acquire("b"), 1)
    slots.release("a")
    await asyncio.wait_for(blocked, 1)
    assert slots.held("a") == 1 and slots.held("b") == 1


async def test_a_cancelled_waiter_passes_its_worker_on() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    cancelled = asyncio.ensure_future(slots.acquire("b"))
    second = asyncio.ensure_future(slots.acquire("c"))
    await asyncio.sleep(0)
    slots.release("a")  # grants b ...
    cancelled.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(second, 1)
    assert slots.held("b") == 0 and slots.held("c") == 1


async def test_release_from_another_thread_wakes_the_loop() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    waiter = asyncio.ensure_future(slots.acquire("b"))
    await asyncio.sleep(0)
    await asyncio.to_thread(slots.release, "a")
    await asyncio.wait_for(waiter, 1)
    assert slots.held("b") == 1


async def test_hold_releases_on_error() -> None:
    slots = FairSlots(1)
    with pytest.raises(KeyError):
        async with slots.hold("a"):
            raise KeyError("x")
    assert slots.held("a") == 0
    async with slots.hold("b"):
        assert slots.held("b") == 1
