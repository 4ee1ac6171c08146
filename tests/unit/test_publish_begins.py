"""A publish that finds idle workers begins their first attempts itself: flow control admits
them before the commit, and their start is stored with the execution, so a worker calls the
handler without a transaction of its own. An engine on the in-memory store, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import Unavailable
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Event,
    ExecutionStatus,
    HandlerSpec,
    Trigger,
)
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings
from neoactions.server.store import AttemptStart, ExecutionFilter
from tests.conftest import eventually


class _Gate:
    """A runner whose attempts wait until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started: list[str] = []

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.started.append(ctx.execution_id)
        await self.open.wait()
        yield Result({"ok": True})


class _Rig:
    def __init__(self, engine: Engine, store: MemoryStore, gate: _Gate, starts: list[str]) -> None:
        self.engine, self.store, self.gate, self.starts = engine, store, gate, starts

    async def action(self, **fields: Any) -> Action:
        action = Action(
            name="ship", trigger=Trigger(["order.created"]), handler=HandlerSpec("gate"), tenant=ADMIN_TENANT, **fields
        )
        return await self.engine.actions.create(action)

    async def publish(self, n: int) -> list[Any]:
        events = [Event("", ADMIN_TENANT, "order.created", data={"i": i}) for i in range(n)]
        published = await self.engine.publish(Caller(), ADMIN_TENANT, events)
        return [ex for p in published for ex in p.executions]

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        await eventually(check, within=within, what="the engine's state")

    async def statuses(self) -> list[ExecutionStatus]:
        page = await self.store.list_executions(ADMIN_TENANT, ExecutionFilter(), 100)
        return sorted((x.status for x in page.items), key=lambda s: s.value)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[_Rig]:
    """An engine with two workers."""
    store = MemoryStore()
    await store.open()
    starts: list[str] = []
    record = store.record_attempts

    async def spying(tenant: str, changes: Any) -> Any:
        starts.extend(c.execution_id for c in changes if isinstance(c, AttemptStart))
        return await record(tenant, changes)

    store.record_attempts = spying  # type: ignore[method-assign]
    gate = _Gate()
    registry = HandlerRegistry()
    registry.register(HandlerType("gate", gate))
    settings = Settings(data_dir=tmp_path, concurrency=2, poll_interval_seconds=0.05)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    try:
        yield _Rig(engine, store, gate, starts)
    finally:
        gate.open.set()
        await engine.stop(5.0)
        await store.close()


async def test_idle_workers_get_executions_stored_with_their_first_attempt_running(rig: _Rig) -> None:
    await rig.action()
    executions = await rig.publish(3)
    # two idle workers: two begun in the publish, the third waits its turn, leased here
    assert sorted(x.status.value for x in executions) == ["pending", "running", "running"]
    begun = [x for x in executions if x.status is ExecutionStatus.RUNNING]
    waiting = [x.id for x in executions if x.status is ExecutionStatus.PENDING]
    for x in begun:
        stored = await rig.store.get_execution(ADMIN_TENANT, x.id)
        assert stored.status is ExecutionStatus.RUNNING and stored.attempt_count == 1
        assert [(a.number, a.status) for a in stored.attempts] == [(1, ExecutionStatus.RUNNING)]
    await rig.until(lambda: len(rig.gate.started) == 2)
    assert set(rig.gate.started) == {x.id for x in begun}
    assert rig.starts == []  # no start transaction of their own

    rig.gate.open.set()
    await rig.until(lambda: len(rig.gate.started) == 3)
    # the one that waited starts the usual way: its start recorded before its handler ran
    assert rig.starts == waiting
    await rig.engine.dispatcher.drain(5.0)
    for x in executions:
        stored = await rig.store.get_execution(ADMIN_TENANT, x.id)
        assert stored.status is ExecutionStatus.SUCCEEDED, stored
        assert [(a.number, a.status) for a in stored.attempts] == [(1, ExecutionStatus.SUCCEEDED)]


async def test_an_attempt_flow_control_refuses_is_not_begun_and_runs_once_admitted(rig: _Rig) -> None:
    await rig.action(max_concurrency=1)
    executions = await rig.publish(2)
    assert [x.status.value for x in executions] == ["running", "pending"]
    await rig.until(lambda: len(rig.gate.started) == 1)
    rig.gate.open.set()
    await rig.until(lambda: len(rig.gate.started) == 2, within=10.0)
    await rig.until(lambda: rig.engine.dispatcher.free_slots() == 2)
    assert await rig.statuses() == [ExecutionStatus.SUCCEEDED] * 2


async def test_a_publish_that_stores_nothing_gives_back_its_worker_slots_and_flow_leases(rig: _Rig) -> None:
    await rig.action(max_concurrency=1)
    append = rig.store.append

    async def down(*args: Any, **kwargs: Any) -> None:
        raise Unavailable("database down")

    rig.store.append = down  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        await rig.publish(2)
    assert rig.engine.dispatcher.free_slots() == 2
    assert await rig.statuses() == []

    rig.store.append = append  # type: ignore[method-assign]
    # the lease of max_concurrency 1 taken for the failed publish was given back
    assert [x.status.value for x in await rig.publish(1)] == ["running"]


async def test_concurrent_publishes_begin_no_more_than_the_idle_workers(rig: _Rig) -> None:
    await rig.action()
    batches = await asyncio.gather(*(rig.publish(2) for _ in range(3)))
    statuses = [x.status for batch in batches for x in batch]
    assert statuses.count(ExecutionStatus.RUNNING) == 2
    await rig.until(lambda: len(rig.gate.started) == 2)
    rig.gate.open.set()
    await rig.until(lambda: len(rig.gate.started) == 6)
    await rig.engine.dispatcher.drain(5.0)
    assert await rig.statuses() == [ExecutionStatus.SUCCEEDED] * 6
