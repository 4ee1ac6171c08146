"""Workflow runs driven by an in-process engine on the in-memory store: the DAG, variables,
conditions, fan-out, timers, event waits (woken by exactly their event, or timing out),
pause/resume, cancel reaching running steps (also those a drive stores while the run is
cancelled), retry_then_dead_letter ending the run dead-lettered, and a drive repeated never
re-running a completed step."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    Event,
    Execution,
    ExecutionError,
    ExecutionStatus,
    HandlerSpec,
    Trigger,
    UpdateKind,
)
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus, UpdateFilter
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings
from neoactions.server.store import ExecutionFilter
from neoactions.server.workflows.rows import StepStatus


class _Note:
    """A handler type recording each call (``config.tag``, the input) and answering with them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gate: asyncio.Event | None = None

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.calls.append((str(config.get("tag", "")), data))
        if config.get("hold") and self.gate is not None:
            await self.gate.wait()
        if config.get("fail"):
            from neoactions.server.runners import Failure

            yield Failure.of("boom", "it failed")
            return
        yield Result({"tag": config.get("tag"), "input": data, "score": config.get("score", 0)})


class _Rig:
    def __init__(self, engine: Engine, store: MemoryStore, note: _Note) -> None:
        self.engine, self.store, self.note = engine, store, note

    async def workflow(self, config: dict[str, Any], name: str = "flow", event_type: str = "order.created") -> Action:
        action = Action(
            name=name,
            tenant=ADMIN_TENANT,
            trigger=Trigger([event_type]),
            handler=HandlerSpec("workflow", config),
        )
        return await self.engine.create_action(Caller(), action)

    async def publish(self, event_type: str = "order.created", **data: Any) -> list[Execution]:
        event = Event("", ADMIN_TENANT, event_type, data=data)
        [published] = await self.engine.publish(Caller(), ADMIN_TENANT, [event])
        return published.executions

    async def until(self, execution_id: str, check: Callable[[Execution], bool], within: float = 10.0) -> Execution:
        async with asyncio.timeout(within):
            while True:
                ex = await self.store.get_execution(ADMIN_TENANT, execution_id)
                if check(ex):
                    return ex
                await asyncio.sleep(0.01)

    async def steps(self, run_id: str) -> dict[str, StepStatus]:
        rows = await self.store.workflow_steps(ADMIN_TENANT, run_id)
        return {r.label: r.status for r in rows}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[_Rig]:
    store = MemoryStore()
    await store.open()
    registry = HandlerRegistry()
    note = _Note()
    registry.register(HandlerType("note", note))
    settings = Settings(data_dir=tmp_path, concurrency=8, poll_interval_seconds=0.05)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    try:
        yield _Rig(engine, store, note)
    finally:
        await engine.stop(5.0)
        await store.close()


def _final(ex: Execution) -> bool:
    return ex.status.is_final


async def test_a_dag_with_variables_conditions_and_fan_out_runs_to_its_end(rig: _Rig) -> None:
    await rig.workflow(
        {
            "variables": {"tier": {"type": "string", "default": "free"}},
            "steps": [
                {"name": "welcome", "handler": {"type": "note", "config": {"tag": "welcome"}}},
                {"name": "score", "handler": {"type": "note", "config": {"tag": "score", "score": 90}}},
                {
                    "name": "set-tier",
                    "set_variable": {"tier": "{{ 'gold' if steps.score.output.score > 80 else 'free' }}"},
                    "depends_on": ["score"],
                },
                {
                    "name": "gold-only",
                    "condition": "vars.tier == 'gold'",
                    "handler": {"type": "note", "config": {"tag": "gold"}},
                    "input_mapping": {"tier": "{{ vars.tier }}", "n": "{{ data.n }}"},
                    "depends_on": ["set-tier"],
                },
                {
                    "name": "never",
                    "condition": "vars.tier == 'free'",
                    "handler": {"type": "note", "config": {"tag": "never"}},
                    "depends_on": ["set-tier"],
                },
                {
                    "name": "per-seat",
                    "for_each": "{{ data.seats }}",
                    "max_parallel": 2,
                    "handler": {"type": "note", "config": {"tag": "seat"}},
                    "depends_on": ["welcome"],
                },
                {"name": "cool-down", "wait": "50ms", "depends_on": ["per-seat"]},
            ],
        }
    )
    [run] = await rig.publish(n=21, seats=["a", "b", "c"])
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED, done.error
    assert done.output["vars"] == {"tier": "gold"}
    # a single {{ expression }} keeps its type: 21 stays a number
    assert done.output["steps"]["gold-only"]["input"] == {"tier": "gold", "n": 21}
    assert [o["input"] for o in done.output["steps"]["per-seat"]] == ["a", "b", "c"]
    steps = await rig.steps(run.id)
    assert steps["never"] is StepStatus.SKIPPED
    assert steps["cool-down"] is StepStatus.SUCCEEDED
    tags = Counter(tag for tag, _ in rig.note.calls)
    assert tags == {"welcome": 1, "score": 1, "gold": 1, "seat": 3}
    children = await rig.engine.list_executions(Caller(), ADMIN_TENANT, _filter(), 100, "")
    kids = [x for x in children.items if x.parent_execution_id == run.id]
    assert len(kids) == 6 and all(k.status is ExecutionStatus.SUCCEEDED for k in kids)
    assert {k.idempotency_key for k in kids} >= {f"{run.id}/per-seat/{i}" for i in range(3)}


def _filter() -> Any:
    from neoactions.server.store import ExecutionFilter

    return ExecutionFilter()


async def test_an_event_wait_is_woken_by_exactly_its_event(rig: _Rig) -> None:
    await rig.workflow(
        {
            "steps": [
                {
                    "name": "wait-for-payment",
                    "wait_for_event": {
                        "event_types": ["payments.succeeded"],
                        "conditions": [{"field": "data.customer_id", "operator": "equals", "value": "{{ data.id }}"}],
                        "timeout": "1h",
                    },
                },
                {
                    "name": "nudge",
                    "condition": "steps['wait-for-payment'].timed_out",
                    "handler": {"type": "note", "config": {"tag": "nudge"}},
                    "depends_on": ["wait-for-payment"],
                },
            ]
        }
    )
    [a] = await rig.publish(id="c1")
    [b] = await rig.publish(id="c2")
    for run in (a, b):
        await rig.until(run.id, lambda x: x.status is ExecutionStatus.WAITING)
    await _eventually(lambda: rig.engine.workflows.waits(ADMIN_TENANT) == 2)
    await rig.publish("payments.succeeded", customer_id="c2", amount=5)
    done = await rig.until(b.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert done.output["steps"]["wait-for-payment"]["data"] == {"customer_id": "c2", "amount": 5}
    assert (await rig.steps(b.id))["nudge"] is StepStatus.SKIPPED
    still = await rig.store.get_execution(ADMIN_TENANT, a.id)
    assert still.status is ExecutionStatus.WAITING  # the other run is not woken
    assert rig.engine.workflows.waits(ADMIN_TENANT) == 1


async def test_an_event_wait_times_out_and_its_branch_runs(rig: _Rig) -> None:
    await rig.workflow(
        {
            "steps": [
                {"name": "wait-for-payment", "wait_for_event": {"event_types": ["payments.succeeded"], "timeout": 0.2}},
                {
                    "name": "nudge",
                    "condition": "steps['wait-for-payment'].timed_out",
                    "handler": {"type": "note", "config": {"tag": "nudge"}},
                    "depends_on": ["wait-for-payment"],
                },
            ]
        }
    )
    [run] = await rig.publish()
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED
    steps = await rig.steps(run.id)
    assert steps == {"wait-for-payment": StepStatus.TIMED_OUT, "nudge": StepStatus.SUCCEEDED}
    assert rig.engine.workflows.waits(ADMIN_TENANT) == 0


async def test_pause_lets_steps_in_flight_finish_and_starts_no_new_one_until_resumed(rig: _Rig) -> None:
    rig.note.gate = asyncio.Event()
    await rig.workflow(
        {
            "steps": [
                {"name": "first", "handler": {"type": "note", "config": {"tag": "first", "hold": True}}},
                {"name": "second", "handler": {"type": "note", "config": {"tag": "second"}}, "depends_on": ["first"]},
            ]
        }
    )
    [run] = await rig.publish()
    await _eventually(lambda: any(tag == "first" for tag, _ in rig.note.calls))
    await rig.engine.pause_execution(Caller(), ADMIN_TENANT, run.id)
    rig.note.gate.set()
    await _eventually_async(lambda: _status_is(rig, run.id, "first", StepStatus.SUCCEEDED))
    await asyncio.sleep(0.3)
    assert "second" not in await rig.steps(run.id)
    assert (await rig.store.get_execution(ADMIN_TENANT, run.id)).status is ExecutionStatus.WAITING
    await rig.engine.resume_execution(Caller(), ADMIN_TENANT, run.id)
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert [tag for tag, _ in rig.note.calls] == ["first", "second"]
    with pytest.raises(FailedPrecondition):
        await rig.engine.pause_execution(Caller(), ADMIN_TENANT, run.id)


async def test_cancel_reaches_the_running_steps(rig: _Rig) -> None:
    rig.note.gate = asyncio.Event()
    await rig.workflow({"steps": [{"name": "slow", "handler": {"type": "note", "config": {"hold": True}}}]})
    [run] = await rig.publish()
    await _eventually(lambda: bool(rig.note.calls))
    rows = await rig.store.workflow_steps(ADMIN_TENANT, run.id)
    child = rows[0].child_id
    await rig.engine.cancel_execution(Caller(), ADMIN_TENANT, run.id, "stop")
    cancelled = await rig.until(child, _final)
    assert cancelled.status is ExecutionStatus.CANCELLED
    assert (await rig.steps(run.id)) == {"slow": StepStatus.CANCELLED}


async def test_cancel_while_a_drive_stores_its_steps_reaches_the_steps_it_stores(rig: _Rig) -> None:
    """The run is cancelled (as another process would: in the store, then its steps) after the
    drive read the steps and before it stores the ones it starts: those are cancelled too."""
    rig.note.gate = asyncio.Event()  # a step that started would hold until the test ends
    save = rig.store.save_workflow_steps
    cancelled: list[str] = []

    async def cancel_first(tenant: str, rows: Any) -> None:
        starting = [r for r in rows if r.status is StepStatus.RUNNING and r.child_id]
        if starting and not cancelled:
            run_id = starting[0].run_id
            cancelled.append(run_id)
            run = await rig.store.cancel_execution(tenant, run_id, ExecutionError("cancelled", "stop"))
            await rig.engine.workflows.cancel_steps(run)
        await save(tenant, rows)

    rig.store.save_workflow_steps = cancel_first  # type: ignore[method-assign]
    await rig.workflow(
        {
            "steps": [
                {"name": "a", "handler": {"type": "note", "config": {"tag": "a", "hold": True}}},
                {"name": "b", "handler": {"type": "note", "config": {"tag": "b", "hold": True}}},
            ]
        }
    )
    [run] = await rig.publish()
    await _eventually(lambda: bool(cancelled))
    await _eventually_async(lambda: _rows_final(rig, run.id))
    rows = await rig.store.workflow_steps(ADMIN_TENANT, run.id)
    assert {r.label: r.status for r in rows} == {"a": StepStatus.CANCELLED, "b": StepStatus.CANCELLED}
    for row in rows:
        child = await rig.until(row.child_id, _final)
        assert child.status is ExecutionStatus.CANCELLED
    assert (await rig.store.get_execution(ADMIN_TENANT, run.id)).status is ExecutionStatus.CANCELLED


async def _rows_final(rig: _Rig, run_id: str) -> bool:
    rows = await rig.store.workflow_steps(ADMIN_TENANT, run_id)
    return bool(rows) and all(r.status.is_final for r in rows)


async def test_a_failed_step_fails_the_run_and_continue_mode_skips_only_its_dependents(rig: _Rig) -> None:
    steps = [
        {"name": "bad", "handler": {"type": "note", "config": {"fail": True}}},
        {"name": "after-bad", "handler": {"type": "note", "config": {"tag": "x"}}, "depends_on": ["bad"]},
        {"name": "other", "handler": {"type": "note", "config": {"tag": "other"}}},
    ]
    await rig.workflow({"steps": steps}, name="strict")
    await rig.workflow(
        {"steps": steps, "error_handling": {"mode": "continue"}}, name="lenient", event_type="order.paid"
    )
    [strict] = await rig.publish()
    [lenient] = await rig.publish("order.paid")
    failed = await rig.until(strict.id, _final)
    assert failed.status is ExecutionStatus.FAILED
    assert failed.error is not None and "'bad'" in failed.error.message
    done = await rig.until(lenient.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED
    statuses = await rig.steps(lenient.id)
    assert statuses == {"bad": StepStatus.FAILED, "after-bad": StepStatus.SKIPPED, "other": StepStatus.SUCCEEDED}


async def test_step_updates_reach_the_runs_watchers(rig: _Rig) -> None:
    await rig.workflow({"steps": [{"name": "only", "handler": {"type": "note", "config": {"tag": "x"}}}]})
    subscription = rig.engine.bus.subscribe(UpdateFilter(ADMIN_TENANT))
    [run] = await rig.publish()
    await rig.until(run.id, _final)
    seen: list[tuple[UpdateKind, str]] = []
    async with asyncio.timeout(5):
        async for update in subscription:
            if update.execution_id == run.id and update.step:
                seen.append((update.kind, update.step))
            if update.execution_id == run.id and update.kind.is_final:
                break
    subscription.close()
    assert (UpdateKind.STEP_STARTED, "only") in seen and (UpdateKind.STEP_SUCCEEDED, "only") in seen


async def test_driving_again_never_reruns_a_completed_step(rig: _Rig) -> None:
    """Wake the run many times while it works (as a crash's re-drive would): each step runs once."""
    await rig.workflow(
        {
            "steps": [
                {"name": f"s{i}", "handler": {"type": "note", "config": {"tag": f"s{i}"}}}
                | ({"depends_on": [f"s{i - 1}"]} if i else {})
                for i in range(8)
            ]
        }
    )
    [run] = await rig.publish()
    for _ in range(40):
        ex = await rig.store.get_execution(ADMIN_TENANT, run.id)
        if ex.status.is_final:
            break
        with contextlib.suppress(FailedPrecondition):
            await rig.engine.wake_execution(Caller(), ADMIN_TENANT, run.id)
        await asyncio.sleep(0.005)
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert Counter(tag for tag, _ in rig.note.calls) == {f"s{i}": 1 for i in range(8)}


async def test_invalid_workflows_are_refused_naming_the_step(rig: _Rig) -> None:
    cases = {
        "depends_on": {"steps": [{"name": "a", "wait": 1, "depends_on": ["nope"]}]},
        "cycle": {
            "steps": [{"name": "a", "wait": 1, "depends_on": ["b"]}, {"name": "b", "wait": 1, "depends_on": ["a"]}]
        },
        "template": {"steps": [{"name": "a", "set_variable": {"x": "{{ data. }}"}}]},
        "cel": {"steps": [{"name": "a", "wait": 1, "condition": "vars.x =="}]},
        "handler type": {"steps": [{"name": "a", "handler": {"type": "nope"}}]},
    }
    for what, config in cases.items():
        with pytest.raises(InvalidArgument) as refused:
            await rig.workflow(config, name="bad")
        named = "step 'b'" if what == "cycle" else "step 'a'"
        assert named in refused.value.message, (what, refused.value.message)
        assert refused.value.violations[0].field.startswith("handler.config.steps["), what


async def _status_is(rig: _Rig, run_id: str, step: str, status: StepStatus) -> bool:
    return (await rig.steps(run_id)).get(step) is status


async def _eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def _eventually_async(check: Callable[[], Any], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def test_execute_streams_a_workflow_across_its_waits_to_its_end(rig: _Rig) -> None:
    await rig.workflow(
        {
            "steps": [
                {"name": "nap", "wait": "100ms"},
                {"name": "after", "handler": {"type": "note", "config": {"tag": "after"}}, "depends_on": ["nap"]},
            ]
        }
    )
    kinds: list[UpdateKind] = []
    steps: list[str] = []
    async with asyncio.timeout(10):
        async for update, _token in rig.engine.execute(Caller(), ADMIN_TENANT, {}, action_name="flow"):
            kinds.append(update.kind)
            if update.step:
                steps.append(f"{update.kind.value}:{update.step}")
    assert UpdateKind.SUSPENDED in kinds and kinds[-1] is UpdateKind.SUCCEEDED
    assert "step_waiting:nap" in steps and "step_succeeded:after" in steps


async def test_a_failing_step_is_retried_then_the_dead_letter_action_runs(rig: _Rig) -> None:
    await rig.engine.create_action(
        Caller(),
        Action(
            name="notify-ops",
            tenant=ADMIN_TENANT,
            trigger=Trigger(["ops.never"]),
            handler=HandlerSpec("note", {"tag": "ops"}),
        ),
    )
    await rig.workflow(
        {
            "steps": [
                {"name": "until", "wait_until": "{{ data.when }}"},
                {
                    "name": "flaky",
                    "handler": {"type": "note", "config": {"tag": "flaky", "fail": True}},
                    "retry_policy": {"max_retries": 2, "initial_delay_ms": 10, "jitter": False},
                    "depends_on": ["until"],
                },
            ],
            "error_handling": {"mode": "retry_then_dead_letter", "dead_letter_action": "notify-ops"},
        }
    )
    [run] = await rig.publish(when="2020-01-01T00:00:00Z")
    failed = await rig.until(run.id, _final)
    # the steps spent their retries: the run ends dead-lettered, listed with the dead letters
    assert failed.status is ExecutionStatus.DEAD_LETTERED
    assert failed.error is not None and failed.error.type == "workflow_step_failed"
    letters = await rig.engine.list_dead_letters(Caller(), ADMIN_TENANT, ExecutionFilter(), 10, "")
    assert [x.id for x in letters.items] == [run.id]
    rows = {r.label: r for r in await rig.store.workflow_steps(ADMIN_TENANT, run.id)}
    assert rows["until"].status is StepStatus.SUCCEEDED
    assert rows["flaky"].status is StepStatus.FAILED and rows["flaky"].attempts == 3
    await _eventually(lambda: any(tag == "ops" for tag, _ in rig.note.calls))
    [(_, ops_input)] = [(tag, data) for tag, data in rig.note.calls if tag == "ops"]
    assert ops_input["execution_id"] == run.id and ops_input["step"] == "flaky"
    assert [tag for tag, _ in rig.note.calls].count("flaky") == 3


async def test_a_paused_run_with_a_retry_due_waits_for_its_resume_without_driving(rig: _Rig) -> None:
    await rig.workflow(
        {
            "steps": [
                {
                    "name": "flaky",
                    "handler": {"type": "note", "config": {"tag": "flaky", "fail": True}},
                    "retry_policy": {"max_retries": 1, "initial_delay_ms": 200, "jitter": False},
                }
            ]
        }
    )
    [run] = await rig.publish()
    await _eventually(lambda: [tag for tag, _ in rig.note.calls].count("flaky") == 1)
    await rig.engine.pause_execution(Caller(), ADMIN_TENANT, run.id)
    await asyncio.sleep(0.6)  # the retry's time passes while paused
    paused = await rig.store.get_execution(ADMIN_TENANT, run.id)
    drives = paused.attempt_count
    await asyncio.sleep(0.3)
    assert (await rig.store.get_execution(ADMIN_TENANT, run.id)).attempt_count == drives  # not spinning
    assert [tag for tag, _ in rig.note.calls].count("flaky") == 1
    await rig.engine.resume_execution(Caller(), ADMIN_TENANT, run.id)
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.FAILED
    assert [tag for tag, _ in rig.note.calls].count("flaky") == 2


async def test_a_failing_item_fails_its_for_each_and_starts_no_more_items(rig: _Rig) -> None:
    await rig.workflow(
        {
            "steps": [
                {
                    "name": "fan",
                    "for_each": "{{ data.seats }}",
                    "max_parallel": 1,
                    "handler": {"type": "note", "config": {"tag": "item", "fail": "{{ data == 'bad' }}"}},
                }
            ]
        }
    )
    [run] = await rig.publish(seats=["ok", "bad", "never", "never"])
    done = await rig.until(run.id, _final)
    assert done.status is ExecutionStatus.FAILED
    statuses = await rig.steps(run.id)
    rows = await rig.store.workflow_steps(ADMIN_TENANT, run.id)
    assert statuses["fan"] is StepStatus.FAILED, [(r.label, r.status, r.error) for r in rows]
    assert "fan[0]" in statuses, [(r.label, r.status, r.error) for r in rows]
    assert [statuses[f"fan[{i}]"] for i in range(4)] == [
        StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.SKIPPED,
    ]  # fmt: skip
    assert [data for _, data in rig.note.calls] == ["ok", "bad"]
