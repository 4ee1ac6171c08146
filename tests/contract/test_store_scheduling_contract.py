"""The scheduling half of the ``Store`` contract — leases, the outbox, cancel, requeue,
dead letters and event dedup — run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from store_backends import Backend, ContractStore
from test_store_contract import T0, attempt, event, execution, reason_of

from neoactions.domain.errors import Aborted, AlreadyExists, FailedPrecondition, Internal, InvalidArgument, NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import EventStatus, ExecutionError, ExecutionMode, ExecutionStatus, Priority, utcnow
from neoactions.server.store import DUPLICATE_EVENT, LEASE_LOST, AttemptFinish, AttemptStart, ExecutionFilter
from tests.conftest import eventually

LATER = timedelta(seconds=30)


async def test_claim_due_takes_due_unleased_work_by_priority_once(store: ContractStore) -> None:
    low = execution(priority=Priority.LOW, at=T0)
    high = execution(priority=Priority.HIGH, at=T0 + timedelta(seconds=1))
    queued = execution(mode=ExecutionMode.QUEUED)
    later = execution(status=ExecutionStatus.SCHEDULED, next_attempt_at=utcnow() + LATER)
    held = execution(lease_owner="other", lease_expires_at=utcnow() + LATER)
    await store.append("admin", [], [low, high, queued, later, held])

    claimed = await store.claim_due("admin", "me", utcnow() + LATER, 10)
    assert [x.id for x in claimed] == [high.id, low.id]  # highest priority first; not queued, later or held
    assert all(x.lease_owner == "me" for x in claimed)
    assert await store.claim_due("admin", "you", utcnow() + LATER, 10) == []


async def test_concurrent_claims_never_share_an_execution(store: ContractStore, backend: Backend) -> None:
    xs = [execution(at=T0 + timedelta(milliseconds=i)) for i in range(40)]
    await store.append("admin", [], xs)
    other = backend.make()
    await other.open()
    try:
        results = await asyncio.gather(
            *(s.claim_due("admin", f"w{i}", utcnow() + LATER, 7) for i, s in enumerate([store, other] * 4))
        )
    finally:
        await other.close()
    ids = [x.id for batch in results for x in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_claim_by_id_waits_for_a_row_held_by_another_transaction(store: ContractStore, backend: Backend) -> None:
    """A queued execution delivered while its publisher still marks it queued must be claimed
    once that commits, not skipped (skipped, it would wait for the visibility timeout)."""
    if backend.kind != "postgres":
        pytest.skip("SQLite serializes writers: no transaction holds a row another one reads")
    x = execution(mode=ExecutionMode.QUEUED)
    await store.append("admin", [], [x])
    conn = await asyncpg.connect(backend.location)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute('SELECT id FROM "admin".executions WHERE id = $1 FOR UPDATE', x.id)
        claim = asyncio.create_task(store.claim("admin", [x.id], "me", utcnow() + LATER))
        await asyncio.sleep(0.2)
        assert not claim.done()
        await tx.commit()
        assert [c.id for c in await claim] == [x.id]
    finally:
        await conn.close()


async def test_expired_leases_are_claimable_with_attempts(store: ContractStore) -> None:
    x = execution(lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=1))
    await store.append("admin", [], [x])
    await store.start_attempt("admin", x.id, attempt(1), owner="dead")
    [again] = await store.claim_due("admin", "me", utcnow() + LATER, 5)
    assert again.status is ExecutionStatus.RUNNING and [a.number for a in again.attempts] == [1]
    [by_id] = await store.claim("admin", [x.id], "me", utcnow() + LATER) or [again]
    assert by_id.id == x.id


async def test_writes_are_fenced_by_the_lease(store: ContractStore) -> None:
    x = execution()
    await store.append("admin", [], [x])
    [x] = await store.claim("admin", [x.id, "not-an-id", new_id()], "me", utcnow() + LATER)
    assert await reason_of(store.start_attempt("admin", x.id, attempt(1), owner="you"), Aborted) == LEASE_LOST
    await store.start_attempt("admin", x.id, attempt(1), owner="me")
    assert await store.extend_leases("admin", [x.id], "me", utcnow() + LATER) == {x.id}
    assert await store.extend_leases("admin", [x.id], "you", utcnow() + LATER) == set()
    failed = await reason_of(
        store.finish_attempt("admin", x.id, attempt(1), ExecutionStatus.SUCCEEDED, owner="you"), Aborted
    )
    assert failed == LEASE_LOST
    # a retry kept by its owner (a caller waits) keeps the lease; a plain retry gives it up
    retry = utcnow() + timedelta(milliseconds=1)
    await store.finish_attempt(
        "admin", x.id, attempt(1), ExecutionStatus.SCHEDULED, next_attempt_at=retry, owner="me", keep_lease=True
    )
    assert (await store.get_execution("admin", x.id)).lease_owner == "me"
    await store.start_attempt("admin", x.id, attempt(2), owner="me")
    await store.finish_attempt("admin", x.id, attempt(2), ExecutionStatus.SCHEDULED, next_attempt_at=retry, owner="me")
    released = await store.get_execution("admin", x.id)
    assert (released.lease_owner, released.lease_expires_at) == ("", None)
    [x] = await eventually(lambda: store.claim_due("admin", "you", utcnow() + LATER, 1), what="the retry came due")
    await store.finish_attempt("admin", x.id, attempt(3), ExecutionStatus.SUCCEEDED, owner="you")
    # a final execution takes no more attempts from anyone
    assert await reason_of(store.start_attempt("admin", x.id, attempt(4)), Aborted) == LEASE_LOST


async def test_record_attempts_applies_a_batch_and_refuses_each_change_alone(store: ContractStore) -> None:
    ev = event()
    one, two, theirs, done = execution(ev), execution(ev), execution(), execution()
    await store.append("admin", [ev], [one, two, theirs, done])
    await store.claim("admin", [one.id, two.id, done.id], "me", utcnow() + LATER)
    await store.claim("admin", [theirs.id], "you", utcnow() + LATER)
    await store.finish_attempt("admin", done.id, attempt(1), ExecutionStatus.SUCCEEDED, owner="me")

    started = await store.record_attempts(
        "admin",
        [
            AttemptStart(one.id, attempt(1), "me"),
            AttemptStart(theirs.id, attempt(1), "me"),  # leased to another
            AttemptStart(two.id, attempt(1), "me"),
            AttemptStart(done.id, attempt(2), "me"),  # final
            AttemptStart(new_id(), attempt(1), "me"),  # unknown
            AttemptStart("not-an-id", attempt(1), "me"),
        ],
    )
    assert [type(r).__name__ for r in started] == ["NoneType", "Aborted", "NoneType", "Aborted", "NotFound", "NotFound"]
    assert [getattr(r, "reason", "") for r in started[1:4:2]] == [LEASE_LOST, LEASE_LOST]
    assert (await store.get_execution("admin", theirs.id)).status is ExecutionStatus.PENDING
    assert (await store.get_execution("admin", one.id)).status is ExecutionStatus.RUNNING

    # both executions of the event end in one batch: the event is settled by it
    failed = ExecutionError("Boom", "no")
    ended = await store.record_attempts(
        "admin",
        [
            AttemptFinish(one.id, attempt(1), ExecutionStatus.SUCCEEDED, output={"ok": 1}, owner="me"),
            AttemptFinish(two.id, attempt(1), ExecutionStatus.FAILED, error=failed, owner="me"),
            AttemptFinish(theirs.id, attempt(1), ExecutionStatus.RUNNING, owner="you"),
        ],
    )
    assert ended[:2] == [None, None] and isinstance(ended[2], InvalidArgument)
    got_one, got_two = [await store.get_execution("admin", x.id) for x in (one, two)]
    assert (got_one.status, got_one.output, got_one.attempts[0].status) == (
        ExecutionStatus.SUCCEEDED, {"ok": 1}, ExecutionStatus.SUCCEEDED,
    )  # fmt: skip
    assert (got_two.status, got_two.error) == (ExecutionStatus.FAILED, failed)
    assert (await store.get_event("admin", ev.id)).status is EventStatus.FAILED

    with pytest.raises(Internal):  # one execution twice in a batch is the caller's bug
        await store.record_attempts(
            "admin", [AttemptStart(theirs.id, attempt(1), "you"), AttemptStart(theirs.id, attempt(2), "you")]
        )


async def test_release_and_defer_hand_work_back(store: ContractStore) -> None:
    a, b = execution(), execution()
    await store.append("admin", [], [a, b])
    await store.claim("admin", [a.id, b.id], "me", utcnow() + LATER)
    assert await store.defer_execution("admin", a.id, utcnow() + LATER, "me")
    assert not await store.defer_execution("admin", a.id, utcnow() + LATER, "me")  # no longer mine
    deferred = await store.get_execution("admin", a.id)
    assert (deferred.status, deferred.attempt_count, deferred.lease_owner) == (ExecutionStatus.PENDING, 0, "")
    assert await store.release_leases("admin", "me") == 1
    [b_again] = await store.claim_due("admin", "you", utcnow() + LATER, 10)  # a is not due yet
    assert b_again.id == b.id


async def test_outbox_takes_due_queued_work_not_on_the_queue(store: ContractStore) -> None:
    old = utcnow() - timedelta(minutes=1)
    marked, fresh, unmarked = (execution(mode=ExecutionMode.QUEUED, at=old) for _ in range(3))
    just_stored = execution(mode=ExecutionMode.QUEUED, at=utcnow())
    not_queued = execution(at=old)
    await store.append("admin", [], [marked, fresh, unmarked, just_stored, not_queued])
    await store.mark_queued("admin", [marked.id], utcnow())
    settle = utcnow() - timedelta(seconds=2)
    taken = await store.take_for_queue("admin", 10, utcnow() - LATER, settle)
    assert {x for x, _ in taken} == {fresh.id, unmarked.id}  # not the marked, the just stored, the async one
    assert await store.take_for_queue("admin", 10, utcnow() - LATER, settle) == []
    await store.unmark_queued("admin", [fresh.id])
    assert [x for x, _ in await store.take_for_queue("admin", 10, utcnow() - LATER, settle)] == [fresh.id]
    # marks older than the stale bound count as lost; a reset forgets every mark
    assert len(await store.take_for_queue("admin", 10, utcnow() + timedelta(seconds=1), settle)) == 3
    assert await store.reset_queued("admin") == 3


async def test_cancel_ends_unfinished_executions_and_settles_the_event(store: ContractStore) -> None:
    ev = event()
    x = execution(ev)
    await store.append("admin", [ev], [x])
    await store.start_attempt("admin", x.id, attempt(1))
    error = ExecutionError("cancelled", "stop")
    cancelled = await store.cancel_execution("admin", x.id, error)
    assert cancelled.status is ExecutionStatus.CANCELLED and cancelled.attempts[0].status is ExecutionStatus.CANCELLED
    assert (await store.get_event("admin", ev.id)).status.value == "failed"
    assert await reason_of(store.cancel_execution("admin", x.id, error), FailedPrecondition) == "EXECUTION_FINISHED"
    assert await reason_of(store.cancel_execution("admin", new_id(), error), NotFound) == "EXECUTION_NOT_FOUND"


async def test_requeue_starts_a_new_attempt_series(store: ContractStore) -> None:
    ev = event()
    dead, ok = execution(ev, "flaky"), execution(ev, "fine")
    await store.append("admin", [ev], [dead, ok])
    await store.finish_attempt("admin", ok.id, attempt(1), ExecutionStatus.SUCCEEDED)
    for n in (1, 2):
        await store.start_attempt("admin", dead.id, attempt(n))
    boom = ExecutionError("Boom", "no", retryable=True)
    await store.finish_attempt("admin", dead.id, attempt(2), ExecutionStatus.DEAD_LETTERED, error=boom)
    assert (await store.get_event("admin", ev.id)).status.value == "failed"

    again = await store.requeue_execution("admin", dead.id)
    assert (again.status, again.attempt_base, again.attempt_count, again.error) == (ExecutionStatus.PENDING, 2, 2, None)
    assert again.series_started_at is not None and len(again.attempts) == 2
    assert (await store.get_event("admin", ev.id)).status.value == "processing"
    reason = await reason_of(store.requeue_execution("admin", ok.id), FailedPrecondition)
    assert reason == "EXECUTION_NOT_RETRYABLE"


async def test_dead_letters_list_and_requeue_by_filter(store: ContractStore) -> None:
    xs = [execution(name=n, at=T0 + timedelta(seconds=i)) for i, n in enumerate(["a", "a", "b", "a"])]
    await store.append("admin", [], xs)
    errors = ["Boom", "timeout", "Boom", "Boom"]
    for x, kind in zip(xs[:3], errors, strict=False):
        await store.finish_attempt(
            "admin", x.id, attempt(1), ExecutionStatus.DEAD_LETTERED, error=ExecutionError(kind, "x")
        )
    await store.finish_attempt("admin", xs[3].id, attempt(1), ExecutionStatus.FAILED, error=ExecutionError("Boom", "x"))
    dead = ExecutionFilter(statuses=frozenset({ExecutionStatus.DEAD_LETTERED}))
    assert len((await store.list_executions("admin", dead)).items) == 3
    dead.error_type = "Boom"
    assert {x.id for x in (await store.list_executions("admin", dead)).items} == {xs[0].id, xs[2].id}

    assert await store.requeue_dead_letters("admin", ExecutionFilter(action_name="a", end_time=T0)) == []
    requeued = await store.requeue_dead_letters("admin", ExecutionFilter(action_name="a", error_type="Boom"))
    assert [x.id for x in requeued] == [xs[0].id] and requeued[0].status is ExecutionStatus.PENDING
    assert len(await store.requeue_dead_letters("admin", ExecutionFilter())) == 2  # the rest; not the failed one


async def test_events_are_deduplicated_within_the_window(store: ContractStore) -> None:
    since = utcnow() - timedelta(hours=1)
    first = event(idempotency_key="order-1")
    cloud = event(source="svc", source_id="42")
    await store.append("admin", [first, cloud], [], dedup_since=since)
    keys = [first.dedup_key(), cloud.dedup_key(), "key:unknown"]
    assert await store.find_duplicates("admin", keys, since) == {keys[0]: first.id, keys[1]: cloud.id}

    again = event(idempotency_key="order-1")
    with pytest.raises(AlreadyExists) as err:
        await store.append("admin", [again], [execution(again)], dedup_since=since)
    assert err.value.reason == DUPLICATE_EVENT
    assert await reason_of(store.get_event("admin", again.id), NotFound) == "EVENT_NOT_FOUND"

    # outside the window the key is free again
    await store.append("admin", [again], [], dedup_since=utcnow() + timedelta(seconds=1))
    assert await store.find_duplicates("admin", keys[:1], since) == {keys[0]: again.id}
    assert await store.purge_dedup("admin", utcnow() + timedelta(seconds=1)) == 2
    assert await store.find_duplicates("admin", keys, since) == {}
