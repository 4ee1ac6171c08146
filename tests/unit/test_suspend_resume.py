"""An attempt may suspend its execution: it waits (``waiting``) holding no worker and no lease,
then a new attempt resumes it with the state the suspending one handed over — at its time, or
when woken. Suspended attempts spend none of the retry budget; the handler's version resolved
at the first attempt is kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import FailedPrecondition
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Event,
    Execution,
    ExecutionStatus,
    HandlerSpec,
    RetryPolicy,
    Trigger,
    UpdateKind,
    utcnow,
)
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus, UpdateFilter
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    Result,
    RunnerUpdate,
    Suspend,
)
from neoactions.server.settings import Settings


class _Steps:
    """Suspends twice (for ``pause`` seconds, or until woken when ``pause`` is None), then
    fails once (retryable) if asked, then returns every state it was resumed with."""

    def __init__(self, pause: float | None, fail_once: bool = False) -> None:
        self.pause, self.fail_once = pause, fail_once
        self.seen: list[Any] = []
        self.running = 0

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.seen.append(ctx.resume_state)
        step = len([s for s in self.seen if s is not None])
        if step < 2 and (ctx.resume_state is not None or len(self.seen) == 1):
            until = None if self.pause is None else utcnow() + timedelta(seconds=self.pause)
            yield Suspend(until=until, state={"step": step + 1}, reason="waiting for the next step")
            return
        if self.fail_once:
            self.fail_once = False
            yield Failure.of("flaky", "try again", retryable=True)
            return
        yield Result({"resumed_with": [s for s in self.seen if s is not None]})


class _Rig:
    def __init__(self, engine: Engine, store: MemoryStore, steps: _Steps) -> None:
        self.engine, self.store, self.steps = engine, store, steps

    async def publish(self) -> Execution:
        event = Event("", ADMIN_TENANT, "order.created", data={})
        [published] = await self.engine.publish(Caller(), ADMIN_TENANT, [event])
        [execution] = published.executions
        return execution

    async def until(self, execution_id: str, check: Callable[[Execution], bool], within: float = 5.0) -> Execution:
        async with asyncio.timeout(within):
            while True:
                ex = await self.store.get_execution(ADMIN_TENANT, execution_id)
                if check(ex):
                    return ex
                await asyncio.sleep(0.01)


async def _rig(tmp_path: Path, steps: _Steps, max_retries: int = 0, version: str = "") -> AsyncIterator[_Rig]:
    store = MemoryStore()
    await store.open()
    registry = HandlerRegistry()
    registry.register(HandlerType("steps", steps, version="1.0.0"))
    settings = Settings(data_dir=tmp_path, concurrency=2, poll_interval_seconds=0.05)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    action = Action(
        name="flow",
        tenant=ADMIN_TENANT,
        trigger=Trigger(["order.created"]),
        handler=HandlerSpec("steps", version=version),
        retry_policy=RetryPolicy(max_retries=max_retries, initial_delay_ms=10),
    )
    await engine.actions.create(action)
    try:
        yield _Rig(engine, store, steps)
    finally:
        await engine.stop(5.0)
        await store.close()


@pytest.fixture
async def timed(tmp_path: Path) -> AsyncIterator[_Rig]:
    async for rig in _rig(tmp_path, _Steps(pause=0.2, fail_once=True), max_retries=1):
        yield rig


@pytest.fixture
async def untimed(tmp_path: Path) -> AsyncIterator[_Rig]:
    async for rig in _rig(tmp_path, _Steps(pause=None)):
        yield rig


async def test_a_suspended_execution_waits_then_resumes_with_its_state(timed: _Rig) -> None:
    bus = timed.engine.bus
    subscription = bus.subscribe(UpdateFilter(ADMIN_TENANT))
    execution = await timed.publish()
    waiting = await timed.until(execution.id, lambda x: x.status is ExecutionStatus.WAITING)
    assert waiting.output == {"step": 1} and waiting.next_attempt_at is not None
    assert waiting.lease_owner == ""  # it holds nothing while it waits
    done = await timed.until(execution.id, lambda x: x.status.is_final)
    # two suspensions and one retryable failure: the one retry allowed was enough
    assert done.status is ExecutionStatus.SUCCEEDED, done.error
    assert done.output == {"resumed_with": [{"step": 1}, {"step": 2}, {"step": 2}]}
    assert [a.status for a in done.attempts] == [
        ExecutionStatus.WAITING,
        ExecutionStatus.WAITING,
        ExecutionStatus.FAILED,
        ExecutionStatus.SUCCEEDED,
    ]
    assert done.handler_version == "1.0.0"
    kinds = []
    async with asyncio.timeout(2):
        async for update in subscription:
            kinds.append(update.kind)
            if update.kind.is_final:
                break
    subscription.close()
    assert kinds.count(UpdateKind.SUSPENDED) == 2


async def test_an_untimed_wait_lasts_until_woken(untimed: _Rig) -> None:
    execution = await untimed.publish()
    waiting = await untimed.until(execution.id, lambda x: x.status is ExecutionStatus.WAITING)
    assert waiting.next_attempt_at is None
    await asyncio.sleep(0.3)  # several scheduler polls: nothing claims it
    assert (await untimed.store.get_execution(ADMIN_TENANT, execution.id)).status is ExecutionStatus.WAITING
    assert len(untimed.steps.seen) == 1
    await untimed.engine.wake_execution(Caller(), ADMIN_TENANT, execution.id)
    await untimed.until(execution.id, lambda x: x.status is ExecutionStatus.WAITING and x.output == {"step": 2})
    await untimed.engine.wake_execution(Caller(), ADMIN_TENANT, execution.id)
    done = await untimed.until(execution.id, lambda x: x.status.is_final)
    assert done.status is ExecutionStatus.SUCCEEDED
    with pytest.raises(FailedPrecondition, match="not waiting"):
        await untimed.engine.wake_execution(Caller(), ADMIN_TENANT, execution.id)


async def test_an_execution_keeps_the_handler_version_it_started_with(tmp_path: Path) -> None:
    async for rig in _rig(tmp_path, _Steps(pause=None)):
        execution = await rig.publish()
        await rig.until(execution.id, lambda x: x.status is ExecutionStatus.WAITING)
        newer = _Steps(pause=None)
        await rig.engine.registry.install(HandlerType("steps", newer, version="2.0.0"))
        await rig.engine.wake_execution(Caller(), ADMIN_TENANT, execution.id)
        resumed = await rig.until(
            execution.id, lambda x: x.status is ExecutionStatus.WAITING and x.output == {"step": 2}
        )
        assert resumed.handler_version == "1.0.0" and newer.seen == []
        # a new execution takes the newest version
        fresh = await rig.publish()
        started = await rig.until(fresh.id, lambda x: x.status is ExecutionStatus.WAITING)
        assert started.handler_version == "2.0.0" and len(newer.seen) == 1
