"""Suspended executions in the ``Store`` contract: a ``waiting`` execution holds no lease, is
due only at its time (or once woken), hands its state over in its output, and keeps the
handler version its first attempt resolved — on every store alike."""

from __future__ import annotations

from datetime import timedelta

from store_backends import ContractStore
from test_store_contract import attempt, execution, reason_of

from neoactions.domain.errors import FailedPrecondition, NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import ExecutionMode, ExecutionStatus, utcnow
from neoactions.server.store import AttemptFinish, AttemptStart

LATER = timedelta(seconds=30)


async def _suspended(store: ContractStore, until_seconds: float | None, mode: ExecutionMode = ExecutionMode.ASYNC):
    x = execution(mode=mode)
    await store.append("admin", [], [x])
    [claimed] = await store.claim("admin", [x.id], "me", utcnow() + LATER)
    first = attempt(1, utcnow())
    errors = await store.record_attempts("admin", [AttemptStart(x.id, first, "me", "1.4.0")])
    assert errors == [None]
    first.status = ExecutionStatus.WAITING
    first.output = {"step": 1}
    until = None if until_seconds is None else utcnow() + timedelta(seconds=until_seconds)
    change = AttemptFinish(x.id, first, ExecutionStatus.WAITING, {"step": 1}, None, until, "me", keep_lease=False)
    assert await store.record_attempts("admin", [change]) == [None]
    return claimed


async def test_a_waiting_execution_holds_no_lease_and_hands_its_state_over(store: ContractStore) -> None:
    x = await _suspended(store, until_seconds=60)
    stored = await store.get_execution("admin", x.id)
    assert stored.status is ExecutionStatus.WAITING and not stored.status.is_final
    assert stored.output == {"step": 1} and stored.finished_at is None
    assert stored.lease_owner == "" and stored.next_attempt_at is not None
    assert [(a.number, a.status, a.output) for a in stored.attempts] == [(1, ExecutionStatus.WAITING, {"step": 1})]
    assert stored.handler_version == "1.4.0"
    assert x.id in {u.id for u in await store.unfinished_executions("admin")}


async def test_a_timed_wait_is_due_at_its_time(store: ContractStore) -> None:
    x = await _suspended(store, until_seconds=60)
    assert await store.claim_due("admin", "you", utcnow() + LATER, 10) == []
    await _suspended(store, until_seconds=-1)  # its time has come
    [due] = await store.claim_due("admin", "you", utcnow() + LATER, 10)
    assert due.id != x.id and due.status is ExecutionStatus.WAITING and due.lease_owner == "you"


async def test_an_untimed_wait_is_due_only_once_woken(store: ContractStore) -> None:
    x = await _suspended(store, until_seconds=None)
    assert await store.claim_due("admin", "you", utcnow() + LATER, 10) == []
    assert await store.claim("admin", [x.id], "you", utcnow() + LATER) == []
    woken = await store.wake_execution("admin", x.id, utcnow())
    assert woken.status is ExecutionStatus.WAITING and woken.next_attempt_at is not None
    [due] = await store.claim_due("admin", "you", utcnow() + LATER, 10)
    assert due.id == x.id
    # the attempt that resumes it keeps the version the first one resolved
    second = attempt(2, utcnow())
    assert await store.record_attempts("admin", [AttemptStart(x.id, second, "you", "9.9.9")]) == [None]
    resumed = await store.get_execution("admin", x.id)
    assert resumed.status is ExecutionStatus.RUNNING and resumed.handler_version == "1.4.0"


async def test_queued_waiting_work_goes_back_through_the_outbox_when_due(store: ContractStore) -> None:
    x = await _suspended(store, until_seconds=None, mode=ExecutionMode.QUEUED)
    assert [i for i, _ in await store.take_for_queue("admin", 10, utcnow(), utcnow())] == []
    await store.wake_execution("admin", x.id, utcnow())
    assert [i for i, _ in await store.take_for_queue("admin", 10, utcnow(), utcnow())] == [x.id]


async def test_only_a_waiting_execution_can_be_woken(store: ContractStore) -> None:
    x = execution()
    await store.append("admin", [], [x])
    assert await reason_of(store.wake_execution("admin", x.id, utcnow()), FailedPrecondition) == "EXECUTION_NOT_WAITING"
    assert await reason_of(store.wake_execution("admin", new_id(), utcnow()), NotFound) == "EXECUTION_NOT_FOUND"
