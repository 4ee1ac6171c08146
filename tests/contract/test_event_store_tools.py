"""Replay, backtesting and retention through the engine, on every store: a dry run counts
what a naive re-match counts; a real replay creates one execution per matching (event,
action), linked to the event, and a second replay none; a backtest over 100,000 stored
events agrees with the naive matcher; retention removes exactly what is older, while
events are being published."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from store_backends import ContractStore

from neoactions.domain.errors import PermissionDenied
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    ConditionGroup,
    Event,
    Execution,
    ExecutionStatus,
    FieldCondition,
    HandlerSpec,
    Trigger,
    utcnow,
)
from neoactions.server.access import Caller, Permission
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.eventstore.port import EventSelection, ReplayJobRecord, ReplayState, RetentionPolicy
from neoactions.server.eventstore.replay import ReplayReport, plan_replay, selection_to_json
from neoactions.server.eventstore.retention import RetentionKeeper
from neoactions.server.matching import NaiveMatcher
from neoactions.server.persistence.codec import to_micros
from neoactions.server.runners import ExecutionContext, HandlerRegistry, HandlerType, Result, RunnerUpdate
from neoactions.server.settings import Settings
from neoactions.server.store import ExecutionFilter
from tests.conftest import eventually

T0 = datetime(2026, 12, 1, tzinfo=UTC)
CALLER = Caller()


class _Counting:
    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()

    async def execute(self, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        self.runs[ctx.execution_id] += 1
        yield Result({"ok": True})


@pytest.fixture
async def engine(store: ContractStore, tmp_path: Path) -> AsyncIterator[Engine]:
    registry = HandlerRegistry()
    registry.register(HandlerType("count", _Counting()))
    settings = Settings(data_dir=tmp_path, concurrency=8, poll_interval_seconds=0.05)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)  # type: ignore[arg-type]
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(5.0)


def runner_of(engine: Engine) -> _Counting:
    runner = engine.registry.get("count", "handler.type").runner
    assert isinstance(runner, _Counting)
    return runner


ACTIONS = [
    ("ship", ["orders.*"], [FieldCondition("data.total", "gt", 50)], True),
    ("audit", ["orders.**"], [], True),
    ("vip", ["orders.created"], [FieldCondition("data.tier", "in", ["gold", "platinum"])], True),
    ("off", ["orders.*"], [], False),
    ("users", ["users.*"], [], True),
]


def definitions() -> list[Action]:
    return [
        Action(
            name=name,
            tenant=ADMIN_TENANT,
            trigger=Trigger(types, conditions=[ConditionGroup("all", list(conds))] if conds else []),
            handler=HandlerSpec("count"),
            enabled=enabled,
        )
        for name, types, conds, enabled in ACTIONS
    ]


def history(n: int, start: datetime = T0) -> list[Event]:
    types = ["orders.created", "orders.paid", "orders.eu.created", "users.created", "stock.moved"]
    tiers = ["gold", "silver", "platinum", "bronze"]
    return [
        Event(
            id=new_id(),
            tenant=ADMIN_TENANT,
            type=types[i % len(types)],
            data={"total": (i * 37) % 100, "tier": tiers[i % 4]},
            source="shop" if i % 2 else "pos",
            time=start + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


async def store_history(store: ContractStore, events: list[Event], batch: int = 5000) -> None:
    for i in range(0, len(events), batch):
        await store.append(ADMIN_TENANT, events[i : i + batch], [])


async def with_actions(engine: Engine) -> list[Action]:
    return [await engine.actions.create(a) for a in definitions()]


def naive_counts(actions: list[Action], events: list[Event]) -> dict[str, list[str]]:
    naive = NaiveMatcher()
    for a in actions:
        naive.put(a)
    hits: dict[str, list[str]] = {}
    for e in events:
        for a in naive.match(ADMIN_TENANT, e):
            hits.setdefault(a.name, []).append(e.id)
    return hits


async def test_a_dry_run_counts_what_a_naive_rematch_counts(engine: Engine, store: ContractStore) -> None:
    actions = await with_actions(engine)
    events = history(600)
    await store_history(store, events)
    selection = EventSelection(type_pattern="orders.**", start_time=T0 + timedelta(milliseconds=100))
    report = await engine.replay_events(CALLER, ADMIN_TENANT, selection, dry_run=True, sample_size=3)
    assert isinstance(report, ReplayReport)
    chosen = [e for e in events if e.type.startswith("orders.") and e.time >= selection.start_time]  # type: ignore[operator]
    expected = naive_counts(actions, chosen)
    assert report.events_scanned == len(chosen)
    assert {c.action: c.events for c in report.actions} == {k: len(v) for k, v in expected.items()}
    for c in report.actions:
        assert c.sample_event_ids == expected[c.action][:3]
    # a named subset, and nothing changed
    only = await engine.replay_events(CALLER, ADMIN_TENANT, selection, ["vip"], dry_run=True)
    assert isinstance(only, ReplayReport)
    assert [(c.action, c.events) for c in only.actions] == [("vip", len(expected["vip"]))]
    assert (await store.list_executions(ADMIN_TENANT, ExecutionFilter(), 10)).items == []


async def replay(engine: Engine, selection: EventSelection, actions: tuple[str, ...] = ()) -> ReplayJobRecord:
    job = await engine.replay_events(CALLER, ADMIN_TENANT, selection, actions, events_per_second=1000)
    assert isinstance(job, ReplayJobRecord) and job.state is ReplayState.RUNNING
    await engine.event_tools.replayer.wait(ADMIN_TENANT, job.id)
    return await engine.get_replay(CALLER, ADMIN_TENANT, job.id)


async def all_executions(store: ContractStore) -> list[Execution]:
    out: list[Execution] = []
    token = ""
    while True:
        page = await store.list_executions(ADMIN_TENANT, ExecutionFilter(), 1000, token)
        out += page.items
        token = page.next_page_token
        if not token:
            return out


async def test_a_real_replay_creates_one_execution_per_match_and_a_second_none(
    engine: Engine, store: ContractStore
) -> None:
    actions = await with_actions(engine)
    events = history(120)
    await store_history(store, events)
    selection = EventSelection(type_pattern="orders.*")
    chosen = [e for e in events if e.type in ("orders.created", "orders.paid")]
    expected = naive_counts(actions, chosen)
    pairs = {(a, e) for a, ids in expected.items() for e in ids}

    job = await replay(engine, selection)
    assert job.state is ReplayState.SUCCEEDED, job.progress
    assert job.progress["executions_created"] == len(pairs)
    assert job.progress["events_scanned"] == len(chosen)
    executions = await all_executions(store)
    assert {(x.action_name, x.replay_of) for x in executions} == pairs
    assert len(executions) == len(pairs)
    assert all(x.event_id == x.replay_of and x.causation_id == x.replay_of for x in executions)
    # they run like any other execution
    runner = runner_of(engine)
    await eventually(lambda: len(runner.runs) == len(pairs), within=30, what="every replayed execution ran")
    assert set(runner.runs.values()) == {1}

    again = await replay(engine, selection)
    assert again.state is ReplayState.SUCCEEDED
    assert again.progress["executions_created"] == 0
    assert again.progress["already_replayed"] == len(pairs)
    assert len(await all_executions(store)) == len(pairs)


async def test_a_slow_replay_can_be_cancelled(engine: Engine, store: ContractStore) -> None:
    await with_actions(engine)
    await store_history(store, history(200))
    job = await engine.replay_events(CALLER, ADMIN_TENANT, EventSelection(), ("audit",), events_per_second=20)
    assert isinstance(job, ReplayJobRecord)
    seen = []
    async for update in engine.watch_replay(CALLER, ADMIN_TENANT, job.id):
        seen.append(update)
        if update.progress["events_scanned"] > 0:
            cancelled = await engine.cancel_replay(CALLER, ADMIN_TENANT, job.id)
            assert cancelled.state is ReplayState.CANCELLED
    assert seen[-1].state is ReplayState.CANCELLED
    final = await engine.get_replay(CALLER, ADMIN_TENANT, job.id)
    assert 0 < final.progress["events_scanned"] < 200
    # what it created stays, once each
    created = await all_executions(store)
    assert len(created) == len({x.replay_of for x in created}) == final.progress["executions_created"]


def dead_process_job(selection: EventSelection, actions: list[str], **kw: Any) -> ReplayJobRecord:
    """A running job as a killed process left it: its lease ran out a second ago."""
    now = utcnow()
    spec = {"selection": selection_to_json(selection), "actions": actions, "events_per_second": 1000}
    progress = {"events_scanned": 0, "events_matched": 0, "executions_created": 0, "already_replayed": 0}
    progress |= {"actions": {}, "error": ""}
    return ReplayJobRecord(
        new_id(), ReplayState.RUNNING, spec, progress, now, now, "dead:1", now - timedelta(seconds=1), **kw
    )


async def test_a_replay_whose_process_died_is_taken_over_from_its_recorded_progress(
    engine: Engine, store: ContractStore
) -> None:
    actions = await with_actions(engine)
    events = history(120)
    await store_history(store, events)
    selection = EventSelection(type_pattern="orders.*")
    chosen = [e for e in events if e.type in ("orders.created", "orders.paid")]
    expected = naive_counts(actions, chosen)
    pairs = {(a, e) for a, ids in expected.items() for e in ids}
    by_name = {a.name: a for a in actions}
    # the dead process recorded its first 30 events, then created the next 10 events' executions
    # and died before recording them: that page is done again
    recorded, unrecorded = chosen[:30], chosen[30:40]
    made: list[int] = []
    for part in (recorded, unrecorded):
        planned = [
            plan_replay(ADMIN_TENANT, e.envelope(), by_name[a])
            for e in part
            for a, hit in expected.items()
            if e.id in hit
        ]
        made.append(len(await store.append_replays(ADMIN_TENANT, planned)))
    job = dead_process_job(selection, [], resume_after=(to_micros(recorded[-1].time), recorded[-1].id))
    job.progress |= {"events_scanned": len(recorded), "executions_created": made[0]}
    await store.create_replay_job(ADMIN_TENANT, job)

    replayer = engine.event_tools.replayer
    await replayer.take_over(ADMIN_TENANT)  # (or the engine's own take-over loop got it first)

    async def ended() -> ReplayJobRecord | None:
        got = await engine.get_replay(CALLER, ADMIN_TENANT, job.id)
        return got if got.state.is_final else None

    final = await eventually(ended, within=30, what="the job taken over and ended")
    assert final.state is ReplayState.SUCCEEDED, final.progress
    assert final.owner == replayer.owner and final.lease_expires_at is None
    assert final.progress["events_scanned"] == len(chosen)
    assert final.progress["already_replayed"] == made[1]
    assert final.progress["executions_created"] == len(pairs) - made[1]
    executions = await all_executions(store)
    assert {(x.action_name, x.replay_of) for x in executions} == pairs
    assert len(executions) == len(pairs)


async def test_a_taken_over_replay_that_cannot_go_on_fails(engine: Engine, store: ContractStore) -> None:
    await with_actions(engine)
    job = dead_process_job(EventSelection(), ["deleted-since"])
    await store.create_replay_job(ADMIN_TENANT, job)
    await engine.event_tools.replayer.take_over(ADMIN_TENANT)

    async def failed() -> bool:
        return (await store.get_replay_job(ADMIN_TENANT, job.id)).state is ReplayState.FAILED

    await eventually(failed, within=20, what="the job failed")
    final = await store.get_replay_job(ADMIN_TENANT, job.id)
    assert "cannot go on" in final.progress["error"] and "deleted-since" in final.progress["error"]


@pytest.mark.parametrize("n", [100_000])
async def test_a_backtest_of_stored_events_agrees_with_the_naive_matcher(
    engine: Engine, store: ContractStore, n: int
) -> None:
    events = history(n)
    await store_history(store, events, batch=10_000)
    candidates = definitions()
    report = await engine.backtest(CALLER, ADMIN_TENANT, candidates, [], EventSelection(), 3, 2)
    assert report.events_scanned == n
    # a backtest treats every definition as enabled: it asks what the trigger would match
    expected = naive_counts([dataclasses.replace(a, enabled=True) for a in candidates], events)
    by_name = {r.action: r for r in report.actions}
    assert {name: r.matched for name, r in by_name.items()} == {
        a.name: len(expected.get(a.name, [])) for a in candidates
    }
    assert by_name["ship"].sample_event_ids == expected["ship"][:3]
    miss = by_name["ship"].near_misses[0]
    assert not miss.explanation.matched and miss.explanation.reason == "conditions_not_met"
    [condition] = miss.explanation.conditions
    assert not condition.matched


async def test_retention_removes_exactly_what_is_older_while_events_are_published(
    engine: Engine, store: ContractStore
) -> None:
    await engine.actions.create(
        Action(name="audit", tenant=ADMIN_TENANT, trigger=Trigger(["orders.*"]), handler=HandlerSpec("count"))
    )
    now = utcnow()
    old = history(2500, start=now - timedelta(days=40))
    kept = history(300, start=now - timedelta(days=29))
    await store_history(store, old + kept, batch=1000)
    finished_old = [
        Execution(
            id=new_id(),
            tenant=ADMIN_TENANT,
            action_id="",
            action_name="audit",
            action_version=1,
            input={},
            status=ExecutionStatus.SUCCEEDED,
            created_at=now - timedelta(days=100),
            finished_at=now - timedelta(days=95),
        )
        for _ in range(30)
    ]
    unfinished_old = dataclasses.replace(finished_old[0], id=new_id(), status=ExecutionStatus.PENDING, finished_at=None)
    await store.append(ADMIN_TENANT, [], [*finished_old, unfinished_old])
    await engine.set_retention(
        CALLER, ADMIN_TENANT, RetentionPolicy(events_seconds=30 * 86400, executions_seconds=90 * 86400)
    )

    published: list[str] = []

    async def publish() -> None:
        for i in range(20):
            batch = [Event("", ADMIN_TENANT, "orders.created", data={"i": i})]
            published.extend(p.event.id for p in await engine.publish(CALLER, ADMIN_TENANT, batch))
            await asyncio.sleep(0)

    # small batches: publishes interleave with many of them
    keeper = RetentionKeeper(engine.store, engine.tenant_slugs, batch=200)
    removed, _ = await asyncio.gather(keeper.apply(ADMIN_TENANT), publish())
    assert removed.events == len(old)
    assert removed.executions == len(finished_old)
    left = {e["id"] for e in (await store.scan_envelopes(ADMIN_TENANT, EventSelection(), None, 100_000))[0]}
    assert left == {e.id for e in kept} | set(published)
    assert (await store.get_execution(ADMIN_TENANT, unfinished_old.id)).status is ExecutionStatus.PENDING
    usage = await engine.usage(CALLER, ADMIN_TENANT)
    assert usage.tables["events"].rows == len(kept) + len(published)


class _ReadOnly:
    """A reader's key: READ only."""

    def check(self, caller: Caller, tenant: str, permission: Permission) -> None:
        if permission is not Permission.READ:
            raise PermissionDenied(f"{permission.value} is not allowed", reason="ROLE_NOT_ALLOWED")


async def test_a_reader_may_dry_run_and_backtest_but_not_replay_or_set_retention(
    engine: Engine, store: ContractStore
) -> None:
    await with_actions(engine)
    await store_history(store, history(20))
    engine.access = _ReadOnly()
    dry = await engine.replay_events(CALLER, ADMIN_TENANT, EventSelection(), dry_run=True)
    assert isinstance(dry, ReplayReport) and dry.events_scanned == 20
    report = await engine.backtest(CALLER, ADMIN_TENANT, definitions()[:1], [], EventSelection())
    assert report.events_scanned == 20
    with pytest.raises(PermissionDenied):
        await engine.replay_events(CALLER, ADMIN_TENANT, EventSelection())
    with pytest.raises(PermissionDenied):
        await engine.set_retention(CALLER, ADMIN_TENANT, RetentionPolicy(86400, 0))
    assert await all_executions(store) == []
