"""The event-archive role of every store: bulk scans, replays recorded once, replay jobs,
retention and usage (SQLite, PostgreSQL and the in-memory store alike)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from store_backends import ContractStore

from neoactions.domain.errors import NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import Action, Event, EventStatus, Execution, ExecutionStatus, HandlerSpec, Trigger
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord, ReplayState, RetentionPolicy

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def ev(i: int, type_: str = "orders.created", **kw: Any) -> Event:
    return Event(
        id=new_id(), tenant="admin", type=type_, data={"n": i}, time=T0 + timedelta(seconds=i), metadata={"m": i}, **kw
    )


async def stored_action(store: ContractStore, name: str = "ship") -> Action:
    return await store.create_action(
        Action(
            name=name,
            tenant="admin",
            id=new_id(),
            trigger=Trigger(event_types=["orders.*"]),
            handler=HandlerSpec("python", {"function": "mod:fn"}),
        )
    )


def replayed(event_id: str, action: Action) -> Execution:
    return Execution(
        id=new_id(),
        tenant="admin",
        action_id=action.id,
        action_name=action.name,
        action_version=action.version,
        input={},
        event_id=event_id,
        replay_of=event_id,
        idempotency_key=f"replay:{event_id}:{action.id}",
    )


async def test_scan_reads_envelopes_oldest_first_in_pages(store: ContractStore) -> None:
    events = [
        ev(i, "orders.created" if i % 3 else "users.created", source="shop" if i % 2 else "pos") for i in range(25)
    ]
    await store.append("admin", events[::-1], [])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = await store.scan_envelopes("admin", EventSelection(type_pattern="orders.*"), cursor, 4)
        seen += page
        if cursor is None:
            break
    wanted = [e for e in events if e.type == "orders.created"]
    assert [s["id"] for s in seen] == [e.id for e in wanted]
    first = next(e for e in events if e.id == seen[0]["id"])
    assert seen[0] == {**first.envelope(), "tenant": "admin"}
    only = await store.scan_envelopes(
        "admin",
        EventSelection(source="shop", start_time=T0 + timedelta(seconds=5), end_time=T0 + timedelta(seconds=11)),
        None,
        100,
    )
    assert [s["id"] for s in only[0]] == [e.id for e in events[5:11] if e.source == "shop"]
    ids = await store.scan_envelopes("admin", EventSelection(event_ids=(events[3].id, events[7].id)), None, 100)
    assert {s["id"] for s in ids[0]} == {events[3].id, events[7].id}
    assert await store.scan_envelopes("admin", EventSelection(type_pattern="nothing.here"), None, 10) == ([], None)


async def test_a_replay_is_stored_once_per_event_and_action(store: ContractStore) -> None:
    events = [ev(i) for i in range(3)]
    await store.append("admin", events, [])
    ship, bill = await stored_action(store, "ship"), await stored_action(store, "bill")
    first = [replayed(e.id, a) for e in events for a in (ship, bill)]
    stored = await store.append_replays("admin", first)
    assert [x.id for x in stored] == [x.id for x in first]
    got = await store.get_execution("admin", stored[0].id)
    assert got.replay_of == events[0].id and got.event_id == events[0].id
    assert (await store.get_event("admin", events[0].id)).status is EventStatus.PROCESSING
    # again, with one new pair among them: only that one is stored
    extra = ev(10)
    await store.append("admin", [extra], [])
    again = [replayed(e.id, ship) for e in events] + [replayed(extra.id, ship)]
    stored_again = await store.append_replays("admin", again)
    assert [x.replay_of for x in stored_again] == [extra.id]


async def test_concurrent_replays_store_one_execution_per_pair(store: ContractStore) -> None:
    events = [ev(i) for i in range(10)]
    await store.append("admin", events, [])
    ship = await stored_action(store)
    results = await asyncio.gather(
        *(store.append_replays("admin", [replayed(e.id, ship) for e in events]) for _ in range(4))
    )
    assert sum(len(r) for r in results) == len(events)


async def test_replay_jobs_record_progress_until_cancelled(store: ContractStore) -> None:
    now = datetime.now(UTC)
    job = ReplayJobRecord(new_id(), ReplayState.RUNNING, {"actions": ["a"]}, {"events_scanned": 0}, now, now)
    await store.create_replay_job("admin", job)
    assert await store.update_replay_job("admin", job.id, {"events_scanned": 5}, ReplayState.RUNNING)
    got = await store.get_replay_job("admin", job.id)
    assert got.progress == {"events_scanned": 5} and got.spec == {"actions": ["a"]}
    cancelled = await store.cancel_replay_job("admin", job.id)
    assert cancelled.state is ReplayState.CANCELLED
    # the job's own next update sees it was cancelled and writes nothing
    assert not await store.update_replay_job("admin", job.id, {"events_scanned": 9}, ReplayState.SUCCEEDED)
    assert (await store.get_replay_job("admin", job.id)).progress == {"events_scanned": 5}
    with pytest.raises(NotFound):
        await store.get_replay_job("admin", new_id())
    with pytest.raises(NotFound):
        await store.get_replay_job("admin", "not-an-id")


async def test_retention_policy_is_kept_per_tenant(store: ContractStore) -> None:
    assert (await store.get_retention("admin")).events_seconds == 0
    set_ = await store.set_retention("admin", RetentionPolicy(30 * 86400, 90 * 86400))
    assert set_.updated_at is not None
    got = await store.get_retention("admin")
    assert (got.events_seconds, got.executions_seconds) == (30 * 86400, 90 * 86400)


async def test_deletes_what_is_older_in_batches(store: ContractStore) -> None:
    events = [ev(i) for i in range(10)]
    await store.append("admin", events, [])
    cutoff = T0 + timedelta(seconds=6)
    assert await store.delete_events_before("admin", cutoff, 4) == 4
    assert await store.delete_events_before("admin", cutoff, 4) == 2
    assert await store.delete_events_before("admin", cutoff, 4) == 0
    left, _ = await store.scan_envelopes("admin", EventSelection(), None, 100)
    assert [e["id"] for e in left] == [e.id for e in events[6:]]

    ship = await stored_action(store)
    xs = [replayed(e.id, ship) for e in events[6:]]
    await store.append_replays("admin", xs)
    done = datetime.now(UTC) - timedelta(days=2)
    for x in xs[:3]:
        from neoactions.domain.model import Attempt

        attempt = Attempt(1, "python", ExecutionStatus.RUNNING, done)
        await store.start_attempt("admin", x.id, attempt)
        attempt.status, attempt.finished_at = ExecutionStatus.SUCCEEDED, done
        await store.finish_attempt("admin", x.id, attempt, ExecutionStatus.SUCCEEDED)
    # finished "now" by the store's clock: older than a cutoff in the future, unfinished ones never
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await store.delete_executions_before("admin", later, 2) == 2
    assert await store.delete_executions_before("admin", later, 2) == 1
    assert await store.delete_executions_before("admin", later, 2) == 0
    with pytest.raises(NotFound):
        await store.get_execution("admin", xs[0].id)
    assert (await store.get_execution("admin", xs[3].id)).status is ExecutionStatus.PENDING


async def test_usage_counts_rows(store: ContractStore) -> None:
    await store.append("admin", [ev(i) for i in range(7)], [])
    usage = await store.usage("admin")
    assert usage.tables["events"].rows == 7
    assert usage.tables["executions"].rows == 0
    assert usage.total_bytes >= 0


async def test_deleting_events_forgets_their_dedup_keys(store: ContractStore) -> None:
    old, kept = ev(1, idempotency_key="k-old"), ev(100, idempotency_key="k-kept")
    since = T0 - timedelta(days=1)
    await store.append("admin", [old], [], dedup_since=since)
    await store.append("admin", [kept], [], dedup_since=since)
    assert await store.delete_events_before("admin", T0 + timedelta(seconds=50), 10) == 1
    found = await store.find_duplicates("admin", [old.dedup_key(), kept.dedup_key()], since)
    assert found == {kept.dedup_key(): kept.id}


async def test_a_replay_job_whose_lease_expired_is_taken_over_and_a_live_one_is_not(store: ContractStore) -> None:
    now = datetime.now(UTC)
    lease = timedelta(seconds=15)
    dead = ReplayJobRecord(
        new_id(), ReplayState.RUNNING, {"actions": []}, {"events_scanned": 3}, now, now, "gone:1", now - lease
    )
    live = ReplayJobRecord(new_id(), ReplayState.RUNNING, {}, {}, now, now, "alive:2", now + lease)
    done = ReplayJobRecord(new_id(), ReplayState.SUCCEEDED, {}, {}, now, now, "gone:1", now - lease)
    for job in (dead, live, done):
        await store.create_replay_job("admin", job)
    # the dead owner recorded its progress and where it got
    assert await store.update_replay_job(
        "admin",
        dead.id,
        {"events_scanned": 7},
        ReplayState.RUNNING,
        owner="gone:1",
        until=now - lease,
        after=(42, dead.id),
    )
    claimed = await store.claim_replay_jobs("admin", "next:3", now, now + lease, 10)
    assert [j.id for j in claimed] == [dead.id]
    got = claimed[0]
    assert (got.owner, got.resume_after, got.progress) == ("next:3", (42, dead.id), {"events_scanned": 7})
    assert got.lease_expires_at is not None and got.lease_expires_at > now
    # claimed: not claimable again while its new lease is live; the old owner's writes are fenced off
    assert await store.claim_replay_jobs("admin", "other:4", now, now + lease, 10) == []
    assert not await store.update_replay_job(
        "admin", dead.id, {"events_scanned": 9}, ReplayState.RUNNING, owner="gone:1"
    )
    assert not await store.release_replay_job("admin", dead.id, "gone:1")
    assert (await store.get_replay_job("admin", live.id)).owner == "alive:2"
    # the new owner goes on, gives the lease up (a stop), and the job is claimable at once
    assert await store.update_replay_job(
        "admin",
        dead.id,
        {"events_scanned": 9},
        ReplayState.RUNNING,
        owner="next:3",
        until=now + lease,
        after=(43, dead.id),
    )
    assert await store.release_replay_job("admin", dead.id, "next:3")
    again = await store.claim_replay_jobs("admin", "other:4", now, now + lease, 10)
    assert [(j.id, j.owner, j.resume_after) for j in again] == [(dead.id, "other:4", (43, dead.id))]
    # a final job is never claimed; the live one is, once its lease has run out
    assert await store.update_replay_job(
        "admin", dead.id, {"events_scanned": 9}, ReplayState.SUCCEEDED, owner="other:4"
    )
    later = await store.claim_replay_jobs("admin", "x:5", now + 2 * lease, now + 3 * lease, 10)
    assert [(j.id, j.owner) for j in later] == [(live.id, "x:5")]
    final = await store.get_replay_job("admin", dead.id)
    assert final.state is ReplayState.SUCCEEDED and final.lease_expires_at is None
