"""The group commit of attempt writes, over a store fake that records its transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from neoactions.server.engine.recorder import AttemptRecorder
from neoactions.server.errors import Aborted, Unavailable
from neoactions.server.model import Attempt
from neoactions.server.store import TRANSACTION_CONFLICT, AttemptChange, AttemptStart


class _Store:
    """``record_attempts`` only: each call is one 'transaction' that takes a little while."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.refuse: set[str] = set()
        self.down = False
        #: transactions the database aborts (a deadlock) before one commits
        self.conflicts = 0

    async def record_attempts(self, tenant: str, changes: Sequence[AttemptChange]) -> list[Exception | None]:
        ids = [c.execution_id for c in changes]
        assert len(set(ids)) == len(ids), "one execution twice in a batch"
        await asyncio.sleep(0.01)  # the commit
        if self.down:
            raise Unavailable("database down")
        if self.conflicts:
            self.conflicts -= 1
            raise Aborted("deadlock detected", reason=TRANSACTION_CONFLICT)
        self.batches.append(ids)
        return [Aborted("not yours", reason="LEASE_LOST") if i in self.refuse else None for i in ids]


def _start(execution_id: str) -> AttemptStart:
    return AttemptStart(execution_id, Attempt(number=1, runner="python"), "me")


async def test_a_lone_change_commits_at_once_and_concurrent_ones_share_commits() -> None:
    store = _Store()
    recorder = AttemptRecorder(store, max_batch=40)  # type: ignore[arg-type]
    await recorder.record("t", _start("lone"))
    assert store.batches == [["lone"]]

    await asyncio.gather(*(recorder.record("t", _start(f"x{i}")) for i in range(100)))
    sizes = [len(b) for b in store.batches[1:]]
    # the first commits alone; the rest wait for it and go in full batches
    assert sum(sizes) == 100 and len(sizes) <= 4 and max(sizes) == 40
    assert [i for b in store.batches[1:] for i in b] == [f"x{i}" for i in range(100)]  # in order


async def test_each_change_gets_its_own_refusal_and_a_failed_commit_reaches_all() -> None:
    store = _Store()
    store.refuse = {"b"}
    recorder = AttemptRecorder(store)  # type: ignore[arg-type]
    results = await asyncio.gather(*(recorder.record("t", _start(i)) for i in "abc"), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "Aborted", "NoneType"]

    store.down = True
    results = await asyncio.gather(*(recorder.record("t", _start(i)) for i in "de"), return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)


async def test_two_changes_of_one_execution_go_in_separate_commits_in_order() -> None:
    store = _Store()
    recorder = AttemptRecorder(store)  # type: ignore[arg-type]
    await asyncio.gather(*(recorder.record("t", _start(i)) for i in ["a", "b", "a", "c"]))
    assert store.batches == [["a", "b"], ["a", "c"]]


async def test_a_cancelled_caller_is_dropped_before_its_commit_and_drain_waits() -> None:
    store = _Store()
    recorder = AttemptRecorder(store)  # type: ignore[arg-type]
    first = asyncio.create_task(recorder.record("t", _start("first")))
    await asyncio.sleep(0)  # its commit is under way
    gone = asyncio.create_task(recorder.record("t", _start("gone")))
    kept = asyncio.create_task(recorder.record("t", _start("kept")))
    await asyncio.sleep(0)
    gone.cancel()
    await recorder.drain()
    assert store.batches == [["first"], ["kept"]]
    assert first.done() and kept.done()
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_transaction_the_database_aborted_is_tried_again_a_few_times() -> None:
    store = _Store()
    store.conflicts = 2
    recorder = AttemptRecorder(store)  # type: ignore[arg-type]
    await asyncio.gather(*(recorder.record("t", _start(i)) for i in "ab"))
    assert [i for b in store.batches for i in b] == ["a", "b"]

    store.conflicts = 3  # every try aborted: the callers get the conflict
    results = await asyncio.gather(*(recorder.record("t", _start(i)) for i in "cd"), return_exceptions=True)
    assert all(isinstance(r, Aborted) and r.reason == TRANSACTION_CONFLICT for r in results)
