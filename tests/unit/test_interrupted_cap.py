"""An attempt cut by its process stopping spends no retry budget, but a series cut that way
``max_interrupted_attempts`` times is dead-lettered: a handler that kills its process must
not loop across restarts forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    ADMIN_TENANT,
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    HandlerSpec,
    InlineAction,
    utcnow,
)
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.engine.dispatcher import INTERRUPTED
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.calls += 1
        yield Result({"ran": True})


async def _left_running(store: MemoryStore, cut_before: int) -> Execution:
    """An inline execution whose process died mid-attempt, after ``cut_before`` earlier cuts."""
    x = Execution(
        id=new_id(),
        tenant=ADMIN_TENANT,
        action_id="",
        action_name="",
        action_version=0,
        input={},
        handler_type="counting",
        inline=InlineAction(HandlerSpec("counting"), 5.0),
    )
    await store.append(ADMIN_TENANT, [], [x])
    gone = utcnow() - timedelta(seconds=1)  # the dead owner's lease has expired
    for number in range(1, cut_before + 2):
        assert await store.claim(ADMIN_TENANT, [x.id], "dead", gone)
        await store.start_attempt(ADMIN_TENANT, x.id, Attempt(number, "counting"), owner="dead")
        if number <= cut_before:  # an earlier process's claim recorded this cut
            cut = Attempt(number, "counting", ExecutionStatus.FAILED)
            error = ExecutionError(INTERRUPTED, "the process running this attempt stopped", retryable=True)
            await store.finish_attempt(ADMIN_TENANT, x.id, cut, ExecutionStatus.SCHEDULED, error=error, owner="dead")
    return x


async def _engine(tmp_path: Path, store: MemoryStore, runner: _Counting) -> Engine:
    registry = HandlerRegistry()
    registry.register(HandlerType("counting", runner))
    settings = Settings(data_dir=tmp_path, poll_interval_seconds=0.05, max_interrupted_attempts=2)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    return engine


async def _final(store: MemoryStore, execution_id: str) -> Execution:
    async with asyncio.timeout(5):
        while True:
            x = await store.get_execution(ADMIN_TENANT, execution_id)
            if x.status.is_final:
                return x
            await asyncio.sleep(0.01)


async def test_a_first_interruption_runs_the_attempt_again(tmp_path: Path) -> None:
    store, runner = MemoryStore(), _Counting()
    await store.open()
    x = await _left_running(store, cut_before=0)
    engine = await _engine(tmp_path, store, runner)
    try:
        done = await _final(store, x.id)
    finally:
        await engine.stop(5.0)
    assert done.status is ExecutionStatus.SUCCEEDED and runner.calls == 1
    assert [a.error.type if a.error else None for a in done.attempts] == [INTERRUPTED, None]


async def test_a_series_cut_too_often_is_dead_lettered_without_running(tmp_path: Path) -> None:
    store, runner = MemoryStore(), _Counting()
    await store.open()
    x = await _left_running(store, cut_before=1)  # this would be the second cut: the limit is 2
    engine = await _engine(tmp_path, store, runner)
    try:
        done = await _final(store, x.id)
    finally:
        await engine.stop(5.0)
    assert done.status is ExecutionStatus.DEAD_LETTERED and runner.calls == 0
    assert done.error is not None and done.error.type == INTERRUPTED and "given up" in done.error.message
    assert [a.error.type if a.error else None for a in done.attempts] == [INTERRUPTED, INTERRUPTED]
