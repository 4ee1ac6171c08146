"""The group commit of attempt writes, over the in-memory store, recording its transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from neoactions.domain.errors import Aborted, Unavailable
from neoactions.domain.ids import new_id
from neoactions.domain.model import Attempt, Execution, ExecutionStatus, Tenant, utcnow
from neoactions.server.engine.recorder import AttemptRecorder
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.store import LEASE_LOST, TRANSACTION_CONFLICT, AttemptChange, AttemptStart


class _Store(MemoryStore):
    """Each ``record_attempts`` is one transaction that takes a little while; it is recorded by
    the names of its executions, or refused whole (the database down, a deadlock)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.down = False
        #: transactions the database aborts (a deadlock) before one commits
        self.conflicts = 0
        self.ids: dict[str, str] = {}
        self.names: dict[str, str] = {}

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        await asyncio.sleep(0.01)  # the commit
        if self.down:
            raise Unavailable("database down")
        if self.conflicts:
            self.conflicts -= 1
            raise Aborted("deadlock detected", reason=TRANSACTION_CONFLICT)
        self.batches.append([self.names[c.execution_id] for c in changes])
        return await super().record_attempts(tenant, changes)

    async def leased(self, names: Sequence[str], owner: str = "me") -> None:
        """Executions named ``names`` in tenant ``t``, leased to ``owner``."""
        fresh = [n for n in dict.fromkeys(names) if n not in self.ids]
        for name in fresh:
            self.ids[name] = new_id()
            self.names[self.ids[name]] = name
        executions = [
            Execution(id=self.ids[n], tenant="t", action_id=new_id(), action_name="ship", action_version=1, input={})
            for n in fresh
        ]
        await self.append("t", [], executions)
        await self.claim("t", [self.ids[n] for n in names], owner, utcnow() + timedelta(hours=1))

    async def status(self, name: str) -> ExecutionStatus:
        return (await self.get_execution("t", self.ids[name])).status


async def _store(*names: str) -> _Store:
    store = _Store()
    await store.open()
    await store.create_tenant(Tenant("t"))
    await store.leased(names)
    return store


def _start(store: _Store, name: str) -> AttemptStart:
    return AttemptStart(store.ids[name], Attempt(number=1, runner="python"), "me")


async def test_a_lone_change_commits_at_once_and_concurrent_ones_share_commits() -> None:
    many = [f"x{i}" for i in range(100)]
    store = await _store("lone", *many)
    recorder = AttemptRecorder(store, max_batch=40)
    await recorder.record("t", _start(store, "lone"))
    assert store.batches == [["lone"]]

    await asyncio.gather(*(recorder.record("t", _start(store, name)) for name in many))
    sizes = [len(b) for b in store.batches[1:]]
    # the first commits alone; the rest wait for it and go in full batches
    assert sum(sizes) == 100 and len(sizes) <= 4 and max(sizes) == 40
    assert [i for b in store.batches[1:] for i in b] == many  # in order
    assert {await store.status(n) for n in ["lone", *many]} == {ExecutionStatus.RUNNING}


async def test_each_change_gets_its_own_refusal_and_a_failed_commit_reaches_all() -> None:
    store = await _store("a", "c", "d", "e")
    await store.leased(["b"], owner="you")
    recorder = AttemptRecorder(store)
    results = await asyncio.gather(*(recorder.record("t", _start(store, i)) for i in "abc"), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "Aborted", "NoneType"]
    assert isinstance(results[1], Aborted) and results[1].reason == LEASE_LOST
    assert [await store.status(n) for n in "abc"] == [
        ExecutionStatus.RUNNING, ExecutionStatus.PENDING, ExecutionStatus.RUNNING,
    ]  # fmt: skip

    store.down = True
    results = await asyncio.gather(*(recorder.record("t", _start(store, i)) for i in "de"), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert [await store.status(n) for n in "de"] == [ExecutionStatus.PENDING] * 2


async def test_two_changes_of_one_execution_go_in_separate_commits_in_order() -> None:
    store = await _store("a", "b", "c")
    recorder = AttemptRecorder(store)
    await asyncio.gather(*(recorder.record("t", _start(store, i)) for i in ["a", "b", "a", "c"]))
    assert store.batches == [["a", "b"], ["a", "c"]]


async def test_a_cancelled_caller_is_dropped_before_its_commit_and_drain_waits() -> None:
    store = await _store("first", "gone", "kept")
    recorder = AttemptRecorder(store)
    first = asyncio.create_task(recorder.record("t", _start(store, "first")))
    await asyncio.sleep(0)  # its commit is under way
    gone = asyncio.create_task(recorder.record("t", _start(store, "gone")))
    kept = asyncio.create_task(recorder.record("t", _start(store, "kept")))
    await asyncio.sleep(0)
    gone.cancel()
    await recorder.drain()
    assert store.batches == [["first"], ["kept"]]
    assert first.done() and kept.done()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await store.status("gone") is ExecutionStatus.PENDING


async def test_a_transaction_the_database_aborted_is_tried_again_a_few_times() -> None:
    store = await _store(*"abcd")
    store.conflicts = 2
    recorder = AttemptRecorder(store)
    await asyncio.gather(*(recorder.record("t", _start(store, i)) for i in "ab"))
    assert [i for b in store.batches for i in b] == ["a", "b"]

    store.conflicts = 3  # every try aborted: the callers get the conflict
    results = await asyncio.gather(*(recorder.record("t", _start(store, i)) for i in "cd"), return_exceptions=True)
    assert all(isinstance(r, Aborted) and r.reason == TRANSACTION_CONFLICT for r in results)
