"""Workflows on the embedded store (SQLite), in one process with the engine:

* per-step overhead of a 10-step sequential no-op workflow: steps/s and the p50 gap between
  one step's child execution ending and the next one starting, against the same no-op
  handler run as plain executions one after another (the baseline, same run);
* 10,000 runs waiting on ``wait_for_event`` at once: the process's RSS and asyncio task
  count before and after, and the milliseconds from publishing one matching event to its
  run's end (exactly that run woken), against publish → end of a plain no-op execution.

Both measure A/B arms in the same run: a woken run dispatched by the scheduler's claim or
directly in the process that woke it; and for the wake, the claim's index as migration 0003
left it (waiting runs on it) or as 0010 makes it (swapped on the database file between wakes).

    .venv/bin/python -m bench workflows     (WORKFLOW_WAITS=2000 for a shorter run)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Event,
    ExecutionStatus,
    HandlerSpec,
    Trigger,
)
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus, UpdateFilter
from neoactions.server.engine import Engine
from neoactions.server.persistence import migrations
from neoactions.server.persistence.sqlite import SqliteStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings

STEPS = 10
RUNS = 10
WAITS = int(os.environ.get("WORKFLOW_WAITS", "10000"))
WAKES = 10


class _Noop:
    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        yield Result(None)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Rig:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.finals: dict[str, asyncio.Future[float]] = {}
        self._sub = engine.bus.subscribe(UpdateFilter(ADMIN_TENANT))
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for update in self._sub:
            if update.kind.is_final:
                fut = self.finals.get(update.execution_id)
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())

    async def close(self) -> None:
        self._sub.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def action(self, name: str, event_type: str, handler: HandlerSpec) -> None:
        await self.engine.create_action(Caller(), Action(name=name, trigger=Trigger([event_type]), handler=handler))

    async def publish(self, event_type: str, data: dict[str, Any]) -> tuple[str, asyncio.Future[float], float]:
        """Publish; returns the one execution's id, a future of its end time, and the publish time."""
        started = time.perf_counter()
        [published] = await self.engine.publish(Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, event_type, data)])
        [ex] = published.executions
        fut = self.finals.setdefault(ex.id, asyncio.get_running_loop().create_future())
        return ex.id, fut, started

    async def status(self, execution_id: str) -> ExecutionStatus:
        return (await self.engine.store.get_execution(ADMIN_TENANT, execution_id)).status


async def _sequential(rig: _Rig) -> list[str]:
    steps = [
        {"name": f"s{i}", "handler": {"type": "noop"}} | ({"depends_on": [f"s{i - 1}"]} if i else {})
        for i in range(STEPS)
    ]
    await rig.action("chain", "bench.chain", HandlerSpec("workflow", {"steps": steps}))
    await rig.action("plain", "bench.plain", HandlerSpec("noop"))
    # warm up both paths once
    for kind in ("bench.chain", "bench.plain"):
        _, fut, _ = await rig.publish(kind, {})
        await fut

    started = time.perf_counter()
    for _ in range(RUNS * STEPS):
        _, fut, _ = await rig.publish("bench.plain", {})
        await fut
    plain_seconds = time.perf_counter() - started
    plain_rate = RUNS * STEPS / plain_seconds

    # A/B in the same run, runs interleaved: a step's run woken through the scheduler's claim,
    # or dispatched directly in the process whose child ended
    workflows = rig.engine.workflows
    arms = {"scheduler claim": False, "direct dispatch": True}
    gaps: dict[str, list[float]] = {arm: [] for arm in arms}
    seconds: dict[str, float] = dict.fromkeys(arms, 0.0)
    for _ in range(RUNS):
        for arm, dispatch in arms.items():
            workflows.wake_here = dispatch
            started = time.perf_counter()
            run, fut, _ = await rig.publish("bench.chain", {})
            await fut
            seconds[arm] += time.perf_counter() - started
            rows = await rig.engine.store.workflow_steps(ADMIN_TENANT, run)
            children = [
                await rig.engine.store.get_execution(ADMIN_TENANT, r.child_id)
                for r in sorted(rows, key=lambda r: r.step)
            ]
            for before, after in itertools.pairwise(children):
                assert before.finished_at is not None and after.started_at is not None
                gaps[arm].append((after.started_at - before.finished_at).total_seconds() * 1000)
    workflows.wake_here = True
    lines = [
        "| 10-step sequential no-op workflow (10 runs per arm, interleaved) | value | ratio |",
        "|---|---|---|",
    ]
    for arm in arms:
        rate = RUNS * STEPS / seconds[arm]
        lines.append(f"| workflow steps/s, {arm} | {rate:,.0f} | {rate / plain_rate:.2f} |")
        lines.append(f"| p50 step-to-step latency, {arm} | {statistics.median(gaps[arm]):.1f} ms | |")
    return [
        *lines,
        f"| baseline: the same no-op as plain executions one after another, executions/s | {plain_rate:,.0f} | 1.00 |",
        f"| p50 plain execution, publish → end | {plain_seconds / (RUNS * STEPS) * 1000:.1f} ms | |",
    ]


async def _waiting(rig: _Rig, db: Path) -> list[str]:
    wait = {
        "steps": [
            {
                "name": "pay",
                "wait_for_event": {
                    "event_types": ["bench.paid"],
                    "conditions": [{"field": "data.customer", "operator": "equals", "value": "{{ data.id }}"}],
                    "timeout": "1h",
                },
            }
        ]
    }
    await rig.action("waiter", "bench.signup", HandlerSpec("workflow", wait))
    await asyncio.sleep(0.5)
    rss_before, tasks_before = _rss_mib(), len(asyncio.all_tasks())
    runs: list[str] = []
    batch = 500
    started = time.perf_counter()
    for first in range(0, WAITS, batch):
        events = [
            Event("", ADMIN_TENANT, "bench.signup", {"id": f"c{i}"}) for i in range(first, min(WAITS, first + batch))
        ]
        for published in await rig.engine.publish(Caller(), ADMIN_TENANT, events):
            runs.append(published.executions[0].id)
    workflows = rig.engine.workflows
    while True:
        if workflows.waits(ADMIN_TENANT) >= WAITS:
            break
        await asyncio.sleep(0.2)
    # every run suspended (status waiting), none running
    while True:
        page = await rig.engine.store.list_executions(ADMIN_TENANT, _filter(ExecutionStatus.WAITING), 1, "")
        running = await rig.engine.store.list_executions(ADMIN_TENANT, _filter(ExecutionStatus.RUNNING), 1, "")
        if page.items and not running.items:
            break
        await asyncio.sleep(0.2)
    setup_seconds = time.perf_counter() - started
    await asyncio.sleep(1.0)
    rss_after, tasks_after = _rss_mib(), len(asyncio.all_tasks())

    # A/B in the same run, rounds interleaved: the claim index of migration 0003 (waiting runs
    # on the priority-ordered index) or 0010's, and the woken run dispatched by the scheduler's
    # claim (its timer set, then a claim round) or directly in the process that woke it
    arms = {
        "0003 index, scheduler claim": (_INDEX_0003, False),
        "0010 index, scheduler claim": (_INDEX_0010, False),
        "0010 index, direct dispatch": (_INDEX_0010, True),
    }
    arm_ms: dict[str, list[float]] = {arm: [] for arm in arms}
    plain_ms: list[float] = []
    targets = iter(range(0, WAITS, WAITS // (WAKES * len(arms))))
    for _ in range(WAKES):
        for arm, (index, dispatch) in arms.items():
            _swap_index(db, index)
            workflows.wake_here = dispatch
            # the schema changed: let the statements be prepared again (a plain execution, a
            # scheduler poll) before the measured wake
            _, warm, _ = await rig.publish("bench.plain", {})
            await warm
            await asyncio.sleep(0.6)
            target = next(targets)
            run = runs[target]
            fut = rig.finals.setdefault(run, asyncio.get_running_loop().create_future())
            started = time.perf_counter()
            await rig.engine.publish(
                Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, "bench.paid", {"customer": f"c{target}"})]
            )
            ended = await fut
            arm_ms[arm].append((ended - started) * 1000)
            assert await rig.status(run) is ExecutionStatus.SUCCEEDED
        _, fut, started = await rig.publish("bench.plain", {})
        plain_ms.append((await fut - started) * 1000)
    workflows.wake_here = True
    woken = WAKES * len(arms)
    assert workflows.waits(ADMIN_TENANT) == WAITS - woken, "exactly the matched runs were woken"
    still = await rig.status(runs[1])
    assert still is ExecutionStatus.WAITING
    plain = statistics.median(plain_ms)
    wake_lines = [
        f"| {arm} | {statistics.median(ms):.1f} | {statistics.median(ms) / plain:.2f} |" for arm, ms in arm_ms.items()
    ]
    return [
        f"| {WAITS:,} runs waiting on wait_for_event | before | after |",
        "|---|---|---|",
        f"| process RSS (MiB) | {rss_before:,.0f} | {rss_after:,.0f} |",
        f"| asyncio tasks | {tasks_before} | {tasks_after} |",
        f"| RSS per waiting run (KiB) | | {(rss_after - rss_before) * 1024 / WAITS:.1f} |",
        f"| setup: {WAITS:,} runs started and suspended (s) | | {setup_seconds:.1f} |",
        "",
        f"| one matching event → its run ends (exactly one run of {WAITS:,} woken), median of {WAKES} | ms | ratio |",
        "|---|---|---|",
        *wake_lines,
        f"| baseline: publish → end of a plain no-op execution | {plain:.1f} | 1.00 |",
    ]


#: the claim's index as migration 0003 left it (waiting runs on it), and as 0010 makes it
_INDEX_0003 = (
    "DROP INDEX IF EXISTS executions_due; DROP INDEX IF EXISTS executions_wake_due;"
    " CREATE INDEX executions_due ON executions (priority DESC, created_at, id)"
    " WHERE status IN ('pending', 'scheduled', 'running', 'waiting');"
)
_INDEX_0010 = (
    "DROP INDEX IF EXISTS executions_due; DROP INDEX IF EXISTS executions_wake_due;"
    + (Path(migrations.__file__).parent / "sqlite" / "0010_waiting_off_due_index.sql")
    .read_text()
    .split("DROP INDEX executions_due;", 1)[1]
)


def _swap_index(db: Path, script: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(script)


def _filter(status: ExecutionStatus) -> Any:
    from neoactions.server.store import ExecutionFilter

    return ExecutionFilter(status=status)


async def _main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "data")
        await store.open()
        registry = HandlerRegistry()
        registry.register(HandlerType("noop", _Noop()))
        engine = Engine(store, registry, InProcessUpdateBus(), Settings(data_dir=Path(tmp)))
        await engine.start()
        rig = _Rig(engine)
        try:
            lines = await _sequential(rig)
            lines += ["", *await _waiting(rig, Path(tmp) / "data" / "admin.db")]
        finally:
            await rig.close()
            await engine.stop(5.0)
            await store.close()
    return "\n".join(lines)


def main() -> str:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(main())
