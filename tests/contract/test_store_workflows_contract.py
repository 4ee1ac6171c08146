"""Workflow step rows in the ``Store`` contract (``WorkflowStore``): upserted per run, read
back by step and index, settled only from the status expected (an event and a timeout
racing for one wait: one wins), event waits listed for the index, pause flags — on every
store alike, and per tenant."""

from __future__ import annotations

from datetime import timedelta

from store_backends import ContractStore

from neoactions.domain.ids import new_id
from neoactions.domain.model import ExecutionError, Tenant, utcnow
from neoactions.server.workflows.rows import StepRun, StepStatus


async def test_step_rows_are_saved_replaced_and_read_back_in_order(store: ContractStore) -> None:
    run = new_id()
    now = utcnow().replace(microsecond=0)
    rows = [
        StepRun(run, "b", -1, StepStatus.RUNNING, child_id=new_id(), attempts=1, started_at=now),
        StepRun(run, "a", -1, StepStatus.SUCCEEDED, output={"n": 21, "x": [1, "two"]}, finished_at=now),
        StepRun(run, "a", 1, StepStatus.PENDING, output={"item": 2}),
        StepRun(run, "a", 0, StepStatus.FAILED, error=ExecutionError("boom", "it broke")),
    ]
    await store.save_workflow_steps("admin", rows)
    await store.save_workflow_steps("admin", [StepRun(new_id(), "a")])  # another run
    got = await store.workflow_steps("admin", run)
    assert [(r.step, r.index) for r in got] == [("a", -1), ("a", 0), ("a", 1), ("b", -1)]
    assert got[0].output == {"n": 21, "x": [1, "two"]} and got[0].finished_at == now
    assert got[1].error == ExecutionError("boom", "it broke")
    assert got[3].child_id == rows[0].child_id and got[3].attempts == 1 and got[3].started_at == now
    rows[0].status, rows[0].output = StepStatus.SUCCEEDED, 7
    await store.save_workflow_steps("admin", [rows[0]])
    again = {r.key: r for r in await store.workflow_steps("admin", run)}
    assert again[("b", -1)].status is StepStatus.SUCCEEDED and again[("b", -1)].output == 7
    assert await store.workflow_steps("admin", new_id()) == []


async def test_a_wait_is_settled_once_and_listed_while_waiting(store: ContractStore) -> None:
    run = new_id()
    wait = {
        "event_types": ["payments.succeeded"],
        "conditions": [{"field": "data.id", "operator": "equals", "value": 3}],
    }
    waiting = StepRun(run, "pay", -1, StepStatus.WAITING, wait=wait, wake_at=utcnow() + timedelta(hours=1))
    await store.save_workflow_steps("admin", [waiting, StepRun(run, "other", -1, StepStatus.WAITING)])
    [listed] = await store.workflow_event_waits("admin")
    assert listed.key == ("pay", -1) and listed.wait == wait
    event = StepRun(run, "pay", -1, StepStatus.SUCCEEDED, output={"type": "payments.succeeded"})
    timeout = StepRun(run, "pay", -1, StepStatus.TIMED_OUT)
    assert await store.settle_workflow_step("admin", event, StepStatus.WAITING)
    assert not await store.settle_workflow_step("admin", timeout, StepStatus.WAITING)
    [settled] = [r for r in await store.workflow_steps("admin", run) if r.step == "pay"]
    assert settled.status is StepStatus.SUCCEEDED and settled.wait is None
    assert await store.workflow_event_waits("admin") == []
    assert not await store.settle_workflow_step("admin", StepRun(new_id(), "x"), StepStatus.WAITING)


async def test_pause_flags_are_per_run_and_per_tenant(store: ContractStore) -> None:
    await store.create_tenant(Tenant("acme"))
    run = new_id()
    assert not await store.workflow_paused("admin", run)
    await store.set_workflow_paused("admin", run, True)
    assert await store.workflow_paused("admin", run)
    assert not await store.workflow_paused("acme", run)
    await store.save_workflow_steps("admin", [StepRun(run, "a")])
    assert await store.workflow_steps("acme", run) == []
    await store.set_workflow_paused("admin", run, False)
    assert not await store.workflow_paused("admin", run)
