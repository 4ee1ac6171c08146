from __future__ import annotations

import asyncio

import pytest

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import ExecutionUpdate, UpdateKind
from neoactions.server.bus import InProcessUpdateBus, UpdateFilter


def update(tenant: str, execution: str, kind: UpdateKind = UpdateKind.LOG, correlation: str = "") -> ExecutionUpdate:
    return ExecutionUpdate(tenant=tenant, kind=kind, execution_id=execution, correlation_id=correlation)


async def take(sub: object, n: int) -> list[ExecutionUpdate]:
    out: list[ExecutionUpdate] = []

    async def read() -> None:
        async for u in sub:  # type: ignore[attr-defined]
            out.append(u)
            if len(out) == n:
                return

    await asyncio.wait_for(read(), 2)
    return out


async def test_filters_by_tenant_and_fields() -> None:
    bus = InProcessUpdateBus()
    sub = bus.subscribe(UpdateFilter(tenant="a", correlation_id="c1"))
    bus.publish(update("b", "x", correlation="c1"))
    bus.publish(update("a", "y", correlation="c2"))
    bus.publish(update("a", "z", correlation="c1"))
    got = await take(sub, 1)
    assert [u.execution_id for u in got] == ["z"]
    sub.close()


async def test_resume_after_a_token_replays_only_what_followed() -> None:
    bus = InProcessUpdateBus()
    for i in range(5):
        bus.publish(update("a", f"e{i}"))
    first = bus.subscribe(UpdateFilter(tenant="a"), "")
    bus.publish(update("a", "e5"))
    [seen] = await take(first, 1)
    token = bus.token(seen)
    bus.publish(update("a", "e6"))
    resumed = bus.subscribe(UpdateFilter(tenant="a"), token)
    assert [u.execution_id for u in await take(resumed, 1)] == ["e6"]


async def test_bad_and_expired_tokens() -> None:
    bus = InProcessUpdateBus(history=3)
    for i in range(10):
        bus.publish(update("a", f"e{i}"))
    with pytest.raises(InvalidArgument):
        bus.subscribe(UpdateFilter(tenant="a"), "garbage")
    epoch = bus.token(update("a", "x")).split(".")[0]
    with pytest.raises(FailedPrecondition):
        bus.subscribe(UpdateFilter(tenant="a"), f"{epoch}.1")
    with pytest.raises(FailedPrecondition):
        bus.subscribe(UpdateFilter(tenant="a"), "0.1")


async def test_a_slow_watcher_is_cut_off_not_the_pipeline() -> None:
    bus = InProcessUpdateBus(subscriber_queue=2)
    sub = bus.subscribe(UpdateFilter(tenant="a"))
    for i in range(10):
        bus.publish(update("a", f"e{i}"))
    with pytest.raises(FailedPrecondition):
        async for _ in sub:
            pass
