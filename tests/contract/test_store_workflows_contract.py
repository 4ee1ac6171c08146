"""Workflow step rows in the ``Store`` contract (``WorkflowStore``): upserted per run, read
back by step and index, settled only from the status expected (an event and a timeout
racing for one wait: one wins), event waits listed for the index, pause flags — on every
store alike, and per tenant. Also how waiting runs meet the scheduler: a claim takes the
waiting runs whose time came together with the ready work, by priority, and never those still
waiting (migration 0010 keeps them off the claim's priority-ordered index); a wake may lease
the run to the process that woke it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from store_backends import ContractStore
from test_store_contract import attempt, execution

from neoactions.domain.ids import new_id
from neoactions.domain.model import Execution, ExecutionError, ExecutionMode, ExecutionStatus, Priority, Tenant, utcnow
from neoactions.server.store import AttemptFinish, AttemptStart
from neoactions.server.workflows.rows import StepRun, StepStatus

LATER = timedelta(seconds=30)


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


async def _waiting(store: ContractStore, until_seconds: float | None, **kw: Any) -> Execution:
    """A run suspended (``waiting``, no lease), due at ``until_seconds`` from now or only when woken."""
    x = execution(**kw)
    await store.append("admin", [], [x])
    await store.claim("admin", [x.id], "me", utcnow() + LATER)
    first = attempt(1, utcnow())
    assert await store.record_attempts("admin", [AttemptStart(x.id, first, "me", "")]) == [None]
    first.status = ExecutionStatus.WAITING
    until = None if until_seconds is None else utcnow() + timedelta(seconds=until_seconds)
    change = AttemptFinish(x.id, first, ExecutionStatus.WAITING, None, None, until, "me", keep_lease=False)
    assert await store.record_attempts("admin", [change]) == [None]
    return x


async def test_a_claim_takes_waiting_runs_whose_time_came_with_ready_work_by_priority(store: ContractStore) -> None:
    untimed = await _waiting(store, None, priority=Priority.CRITICAL)
    later = await _waiting(store, 3600, priority=Priority.CRITICAL)
    due_high = await _waiting(store, -1, priority=Priority.HIGH)
    due_low = await _waiting(store, -1, priority=Priority.LOW)
    queued = await _waiting(store, -1, priority=Priority.CRITICAL, mode=ExecutionMode.QUEUED)
    ready = [execution(priority=Priority.NORMAL), execution(priority=Priority.CRITICAL)]
    await store.append("admin", [], ready)
    first = await store.claim_due("admin", "you", utcnow() + LATER, 3)
    assert [x.id for x in first] == [ready[1].id, due_high.id, ready[0].id]
    assert [x.id for x in await store.claim_due("admin", "you", utcnow() + LATER, 3)] == [due_low.id]
    assert await store.claim_due("admin", "you", utcnow() + LATER, 3) == []
    # the queued one goes through the outbox, by the same rule
    assert [i for i, _ in await store.take_for_queue("admin", 10, utcnow(), utcnow())] == [queued.id]
    woken = await store.wake_execution("admin", untimed.id, utcnow())
    assert woken.lease_owner == ""
    [claimed] = await store.claim_due("admin", "you", utcnow() + LATER, 3)
    assert claimed.id == untimed.id and claimed.status is ExecutionStatus.WAITING
    assert (await store.get_execution("admin", later.id)).lease_owner == ""


async def test_a_wake_may_lease_the_run_to_the_process_that_woke_it(store: ContractStore) -> None:
    x = await _waiting(store, None)
    until = (utcnow() + LATER).replace(microsecond=0)
    woken = await store.wake_execution("admin", x.id, utcnow(), "me", until)
    assert woken.lease_owner == "me" and woken.lease_expires_at == until
    assert [a.number for a in woken.attempts] == [1]  # what a worker needs to run it next
    assert await store.claim_due("admin", "you", utcnow() + LATER, 10) == []  # leased: nobody claims it
    # a live lease of another owner is kept; a run in queued mode goes through the queue instead
    again = await store.wake_execution("admin", x.id, utcnow(), "you", until)
    assert again.lease_owner == "me"
    queued = await _waiting(store, None, mode=ExecutionMode.QUEUED)
    assert (await store.wake_execution("admin", queued.id, utcnow(), "me", until)).lease_owner == ""
    assert [i for i, _ in await store.take_for_queue("admin", 10, utcnow(), utcnow())] == [queued.id]
