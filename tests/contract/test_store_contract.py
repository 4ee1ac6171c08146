"""The behaviour every ``Store`` must have, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from store_backends import Backend, ContractStore  # beside this file, which pytest puts on sys.path

from neoactions.domain.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, Unavailable
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    Action,
    Attempt,
    ConditionGroup,
    Event,
    EventStatus,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    FieldCondition,
    HandlerSpec,
    InlineAction,
    Priority,
    RetryPolicy,
    Tenant,
    Trigger,
)
from neoactions.server.persistence import PostgresStore, SqliteStore
from neoactions.server.store import MAX_PAGE_SIZE, EventFilter, ExecutionFilter

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def action(name: str, tenant: str = "admin", **kw: Any) -> Action:
    return Action(
        name=name,
        tenant=tenant,
        id=new_id(),
        trigger=Trigger(
            event_types=["users.*"],
            conditions=[ConditionGroup("all", [FieldCondition("data.plan", "equals", "pro")])],
        ),
        handler=HandlerSpec("python", {"function": "mod:fn"}),
        **kw,
    )


def event(type_: str = "users.created", tenant: str = "admin", at: datetime = T0, **kw: Any) -> Event:
    return Event(id=new_id(), tenant=tenant, type=type_, data={"n": 1}, time=at, **kw)


def execution(ev: Event | None = None, name: str = "notify", at: datetime = T0, **kw: Any) -> Execution:
    return Execution(
        id=new_id(),
        tenant=ev.tenant if ev else "admin",
        action_id=new_id(),
        action_name=name,
        action_version=1,
        input={"x": [1, 2]},
        handler_type="python",
        event_id=ev.id if ev else "",
        correlation_id=ev.correlation_id if ev else "",
        created_at=at,
        updated_at=at,
        **kw,
    )


def attempt(number: int, at: datetime = T0) -> Attempt:
    return Attempt(number=number, runner="python", started_at=at + timedelta(seconds=number))


async def reason_of(awaitable: Any, kind: type[Exception]) -> str:
    with pytest.raises(kind) as info:
        await awaitable
    return str(getattr(info.value, "reason", ""))


# --- tenants ------------------------------------------------------------------------


async def test_admin_tenant_exists_after_open(store: ContractStore) -> None:
    admin = await store.get_tenant("admin")
    assert admin.slug == "admin"
    assert [t.slug for t in (await store.list_tenants()).items] == ["admin"]


async def test_create_get_list_and_duplicate_tenants(store: ContractStore) -> None:
    created = await store.create_tenant(Tenant("acme", "Acme Inc.", T0))
    assert created == Tenant("acme", "Acme Inc.", T0)
    assert await store.get_tenant("acme") == created
    assert await reason_of(store.create_tenant(Tenant("acme")), AlreadyExists) == "TENANT_ALREADY_EXISTS"
    assert await reason_of(store.create_tenant(Tenant("admin")), AlreadyExists) == "TENANT_ALREADY_EXISTS"
    assert await reason_of(store.get_tenant("nope"), NotFound) == "TENANT_NOT_FOUND"
    for bad in ("Acme", "1acme", "a-b", 'x"; drop', "a" * 42, ""):
        with pytest.raises(InvalidArgument):
            await store.create_tenant(Tenant(bad))


async def test_list_tenants_walks_pages(store: ContractStore) -> None:
    slugs = [f"t{i}" for i in range(7)]
    for slug in reversed(slugs):
        await store.create_tenant(Tenant(slug))
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list_tenants(page_size=3, page_token=token)
        assert len(page.items) <= 3
        seen += [t.slug for t in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(["admin", *slugs])


async def test_each_tenant_has_its_own_schema_or_file(store: ContractStore, backend: Backend) -> None:
    if backend.kind == "memory":
        pytest.skip("schemas and files are how the SQL stores keep tenants apart; memory has one table set per tenant")
    await store.create_tenant(Tenant("acme"))
    if backend.kind == "postgres":
        conn = await asyncpg.connect(backend.location)
        try:
            rows = await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema IN ('admin', 'tenant_acme')"
            )
        finally:
            await conn.close()
        tables: dict[str, set[str]] = {}
        for r in rows:
            tables.setdefault(r["table_schema"], set()).add(r["table_name"])
    else:
        tables = {}
        for schema in ("admin", "tenant_acme"):
            with sqlite3.connect(Path(backend.location) / f"{schema}.db") as conn:
                rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            tables[schema] = {r[0] for r in rows}
    data_tables = {"events", "actions", "action_versions", "executions", "attempts", "schema_migrations"}
    assert data_tables <= tables["tenant_acme"]
    assert data_tables | {"tenants"} <= tables["admin"]
    assert "tenants" not in tables["tenant_acme"]


async def test_same_action_name_in_two_tenants_stays_separate(store: ContractStore) -> None:
    await store.create_tenant(Tenant("acme"))
    await store.create_tenant(Tenant("globex"))
    a = await store.create_action(action("notify", "acme", description="acme's"))
    g = await store.create_action(action("notify", "globex", description="globex's"))
    await store.update_action(action("notify", "globex", description="globex v2"))
    assert (await store.get_action("acme", "notify")).description == "acme's"
    assert (await store.get_action("acme", "notify")).version == 1
    assert (await store.get_action("globex", "notify")).version == 2
    with pytest.raises(NotFound):
        await store.get_action("admin", "notify")
    with pytest.raises(NotFound):  # an id of one tenant names nothing in another
        await store.get_action_version("acme", g.id, 1)
    await store.delete_action("acme", "notify")
    assert (await store.get_action("globex", "notify")).id == g.id
    assert [x.name for x in await store.all_actions("acme")] == []
    assert a.tenant == "acme"


async def test_unknown_tenant_is_not_found_everywhere(store: ContractStore) -> None:
    for slug in ("nope", "Bad-Slug", 'x"."y'):
        calls = [
            store.get_action(slug, "a"),
            store.create_action(action("a", slug)),
            store.list_actions(slug),
            store.all_actions(slug),
            store.append(slug, [event(tenant=slug)], []),
            store.get_event(slug, new_id()),
            store.list_events(slug, EventFilter()),
            store.list_executions(slug, ExecutionFilter()),
            store.get_execution(slug, new_id()),
            store.start_attempt(slug, new_id(), attempt(1)),
            store.unfinished_executions(slug),
        ]
        for call in calls:
            assert await reason_of(call, NotFound) == "TENANT_NOT_FOUND"


# --- actions -------------------------------------------------------------------------


async def test_create_and_get_action_round_trips(store: ContractStore) -> None:
    original = action(
        "notify",
        description="tell them",
        priority=Priority.HIGH,
        execution_mode=ExecutionMode.QUEUED,
        timeout_seconds=2.5,
        retry_policy=RetryPolicy(max_retries=3, backoff="linear"),
        max_concurrency=4,
        tags=["a", "b"],
        enabled=False,
    )
    created = await store.create_action(original)
    assert created.version == 1 and created.id == original.id
    got = await store.get_action("admin", "notify")
    assert got.spec() == original.spec()
    assert (got.id, got.name, got.version, got.enabled, got.tenant) == (original.id, "notify", 1, False, "admin")
    assert got.created_at == created.created_at
    assert await reason_of(store.create_action(action("notify")), AlreadyExists) == "ACTION_ALREADY_EXISTS"
    assert await reason_of(store.get_action("admin", "other"), NotFound) == "ACTION_NOT_FOUND"


async def test_update_makes_versions_and_checks_expected_version(store: ContractStore) -> None:
    created = await store.create_action(action("notify", description="v1"))
    v2 = await store.update_action(action("notify", description="v2"))
    assert (v2.version, v2.id, v2.description) == (2, created.id, "v2")
    assert (await store.get_action("admin", "notify")).description == "v2"
    assert (await store.get_action("admin", "notify", version=1)).description == "v1"
    assert (await store.get_action_version("admin", created.id, 1)).description == "v1"
    stale = store.update_action(action("notify", description="stale"), expected_version=1)
    assert await reason_of(stale, Aborted) == "ACTION_VERSION_MISMATCH"
    v3 = await store.update_action(action("notify", description="v3"), expected_version=2)
    assert v3.version == 3
    with pytest.raises(NotFound):
        await store.get_action("admin", "notify", version=4)
    assert await reason_of(store.update_action(action("ghost")), NotFound) == "ACTION_NOT_FOUND"


async def test_enable_disable_bump_version_and_survive_updates(store: ContractStore) -> None:
    await store.create_action(action("notify"))
    off = await store.set_action_enabled("admin", "notify", False)
    assert (off.version, off.enabled) == (2, False)
    again = await store.set_action_enabled("admin", "notify", False)
    assert (again.version, again.enabled) == (2, False)
    updated = await store.update_action(action("notify", description="new", enabled=True))
    assert (updated.version, updated.enabled) == (3, False)  # enabled is kept from the current version
    on = await store.set_action_enabled("admin", "notify", True)
    assert (on.version, on.enabled, on.description) == (4, True, "new")
    assert (await store.get_action("admin", "notify", version=1)).enabled is True
    with pytest.raises(NotFound):
        await store.set_action_enabled("admin", "ghost", True)


async def test_delete_keeps_versions_and_frees_the_name(store: ContractStore) -> None:
    first = await store.create_action(action("notify", description="first"))
    await store.update_action(action("notify", description="first v2"))
    await store.delete_action("admin", "notify")
    assert await reason_of(store.get_action("admin", "notify"), NotFound) == "ACTION_NOT_FOUND"
    assert (await store.list_actions("admin")).items == []
    assert await store.all_actions("admin") == []
    assert (await store.get_action_version("admin", first.id, 2)).description == "first v2"
    assert await reason_of(store.delete_action("admin", "notify"), NotFound) == "ACTION_NOT_FOUND"
    with pytest.raises(NotFound):
        await store.update_action(action("notify"))
    second = await store.create_action(action("notify", description="second"))
    assert second.version == 1 and second.id != first.id
    assert (await store.get_action("admin", "notify")).description == "second"
    with pytest.raises(NotFound):
        await store.get_action_version("admin", "not-a-uuid", 1)


async def test_list_actions_pages_by_name_and_all_actions(store: ContractStore) -> None:
    names = [f"act_{i:02d}" for i in range(11)]
    for name in reversed(names):
        await store.create_action(action(name))
    await store.set_action_enabled("admin", "act_03", False)
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list_actions("admin", page_size=4, page_token=token)
        seen += [a.name for a in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == names
    every = await store.all_actions("admin")
    assert sorted(a.name for a in every) == names
    assert [a.name for a in every] == list(reversed(names))  # creation order
    assert {a.name: a.version for a in every}["act_03"] == 2


async def test_concurrent_updates_get_distinct_versions(store: ContractStore) -> None:
    await store.create_action(action("notify"))
    results = await asyncio.gather(*(store.update_action(action("notify", description=str(i))) for i in range(6)))
    assert sorted(a.version for a in results) == [2, 3, 4, 5, 6, 7]


# --- events and executions ---------------------------------------------------------------


async def test_append_stores_events_with_their_status(store: ContractStore) -> None:
    ev = event(
        source="svc",
        subject="user/1",
        aggregate_type="user",
        aggregate_id="1",
        metadata={"ip": "10.0.0.1", "nested": {"a": [1, None]}},
        correlation_id="corr",
        causation_id="cause",
        idempotency_key="idem",
    )
    quiet = event("users.deleted")
    await store.append("admin", [ev, quiet], [execution(ev)])
    got = await store.get_event("admin", ev.id)
    assert got.status is EventStatus.PROCESSING
    ev.status = EventStatus.PROCESSING
    assert got == ev
    assert (await store.get_event("admin", quiet.id)).status is EventStatus.COMPLETED
    assert await reason_of(store.get_event("admin", new_id()), NotFound) == "EVENT_NOT_FOUND"
    assert await reason_of(store.get_event("admin", "nope"), NotFound) == "EVENT_NOT_FOUND"


async def test_failed_append_stores_nothing(store: ContractStore) -> None:
    ev = event()
    first = execution(ev)
    twin = execution(ev)
    twin.id = first.id
    with pytest.raises(AlreadyExists):
        await store.append("admin", [ev], [first, twin])
    with pytest.raises(NotFound):
        await store.get_event("admin", ev.id)
    assert (await store.list_executions("admin", ExecutionFilter())).items == []
    await store.append("admin", [ev], [first])
    with pytest.raises(AlreadyExists):  # an id stored by an earlier batch
        await store.append("admin", [event()], [first])
    assert len((await store.list_events("admin", EventFilter())).items) == 1


async def test_append_stores_an_execution_begun_by_its_publisher_with_its_attempt_running(store: ContractStore) -> None:
    ev = event()
    begun = execution(ev, status=ExecutionStatus.RUNNING, attempt_count=1, started_at=T0, lease_owner="me")
    begun.lease_expires_at = T0 + timedelta(minutes=5)
    await store.append("admin", [ev], [begun, execution(ev, name="later")])
    got = await store.get_execution("admin", begun.id)
    assert (got.status, got.attempt_count, got.started_at) == (ExecutionStatus.RUNNING, 1, T0)
    assert [(a.number, a.status, a.started_at, a.runner) for a in got.attempts] == [
        (1, ExecutionStatus.RUNNING, T0, begun.handler_type)
    ]
    # from here it is like any started attempt: its finish is fenced by the lease
    done = Attempt(number=1, runner=begun.handler_type, started_at=T0, finished_at=T0 + timedelta(seconds=1))
    await store.finish_attempt("admin", begun.id, done, ExecutionStatus.SUCCEEDED, {"ok": 1}, None, None, owner="me")
    got = await store.get_execution("admin", begun.id)
    assert got.status is ExecutionStatus.SUCCEEDED
    assert [(a.number, a.status) for a in got.attempts] == [(1, ExecutionStatus.SUCCEEDED)]


async def test_append_refuses_a_running_execution_without_its_attempt_and_stores_nothing(store: ContractStore) -> None:
    ev = event()
    with pytest.raises(InvalidArgument):
        await store.append("admin", [ev], [execution(ev, status=ExecutionStatus.RUNNING, started_at=T0)])
    with pytest.raises(NotFound):
        await store.get_event("admin", ev.id)


async def test_append_refuses_records_of_another_tenant(store: ContractStore) -> None:
    await store.create_tenant(Tenant("acme"))
    with pytest.raises(InvalidArgument):
        await store.append("admin", [event(tenant="acme")], [])
    with pytest.raises(InvalidArgument):
        await store.append("admin", [], [execution(event(tenant="acme"))])
    with pytest.raises(InvalidArgument):
        bad = event()
        bad.id = "not-a-uuid"
        await store.append("admin", [bad], [])


async def test_execution_round_trips_every_field(store: ContractStore) -> None:
    parent = execution(name="")
    inline = execution(
        name="",
        inline=InlineAction(HandlerSpec("http", {"url": "http://x"}), timeout_seconds=3.0),
        status=ExecutionStatus.SCHEDULED,
        error=ExecutionError("Boom", "it broke", "trace", retryable=True),
        output={"partial": True},
        idempotency_key="k1",
        causation_id="c1",
        parent_execution_id=parent.id,
        priority=Priority.CRITICAL,
        mode=ExecutionMode.SYNC,
        attempt_count=2,
        started_at=T0 + timedelta(seconds=1),
        next_attempt_at=T0 + timedelta(minutes=5),
    )
    inline.action_id = ""
    inline.input = "just a string"
    await store.append("admin", [], [parent, inline])
    got = await store.get_execution("admin", inline.id)
    assert got == inline
    assert await reason_of(store.get_execution("admin", new_id()), NotFound) == "EXECUTION_NOT_FOUND"
    assert await reason_of(store.get_execution("admin", "zzz"), NotFound) == "EXECUTION_NOT_FOUND"


async def test_attempts_retry_then_succeed_and_complete_the_event(store: ContractStore) -> None:
    ev = event()
    x = execution(ev)
    await store.append("admin", [ev], [x])
    await store.start_attempt("admin", x.id, attempt(1))
    running = await store.get_execution("admin", x.id)
    assert (running.status, running.attempt_count) == (ExecutionStatus.RUNNING, 1)
    assert running.started_at == T0 + timedelta(seconds=1)
    assert [(a.number, a.status) for a in running.attempts] == [(1, ExecutionStatus.RUNNING)]

    retry_at = T0 + timedelta(seconds=30)
    first = attempt(1)
    first.status = ExecutionStatus.FAILED
    first.finished_at = T0 + timedelta(seconds=2)
    boom = ExecutionError("Timeout", "slow", retryable=True)
    await store.finish_attempt("admin", x.id, first, ExecutionStatus.SCHEDULED, error=boom, next_attempt_at=retry_at)
    scheduled = await store.get_execution("admin", x.id)
    assert (scheduled.status, scheduled.next_attempt_at, scheduled.finished_at) == (
        ExecutionStatus.SCHEDULED,
        retry_at,
        None,
    )
    assert scheduled.attempts[0].error == boom
    assert (await store.get_event("admin", ev.id)).status is EventStatus.PROCESSING

    await store.start_attempt("admin", x.id, attempt(2))
    second = attempt(2)
    second.status = ExecutionStatus.SUCCEEDED
    second.finished_at = T0 + timedelta(seconds=4)
    await store.finish_attempt("admin", x.id, second, ExecutionStatus.SUCCEEDED, output={"ok": True})
    done = await store.get_execution("admin", x.id)
    assert done.status is ExecutionStatus.SUCCEEDED
    assert (done.output, done.error, done.next_attempt_at) == ({"ok": True}, None, None)
    assert done.finished_at == second.finished_at
    assert done.started_at == T0 + timedelta(seconds=1)  # the first attempt's start
    assert done.attempt_count == 2
    assert [(a.number, a.status) for a in done.attempts] == [
        (1, ExecutionStatus.FAILED),
        (2, ExecutionStatus.SUCCEEDED),
    ]
    assert done.attempts[1].output == {"ok": True}
    assert done.attempts[1].duration_ms == 2000.0
    assert (await store.get_event("admin", ev.id)).status is EventStatus.COMPLETED


async def test_get_events_reads_many_and_skips_the_unknown(store: ContractStore) -> None:
    a, b = event(), event("users.deleted")
    await store.append("admin", [a, b], [])
    got = await store.get_events("admin", [a.id, b.id, new_id(), "not-an-id"])
    assert set(got) == {a.id, b.id}
    assert got[b.id].type == "users.deleted" and got[a.id].data == a.data
    assert await store.get_events("admin", []) == {}


async def test_event_fails_when_any_execution_fails(store: ContractStore) -> None:
    ev = event()
    ok, bad = execution(ev, "ok"), execution(ev, "bad")
    await store.append("admin", [ev], [ok, bad])
    await store.finish_attempt("admin", ok.id, attempt(1), ExecutionStatus.SUCCEEDED)
    assert (await store.get_event("admin", ev.id)).status is EventStatus.PROCESSING
    error = ExecutionError("ValueError", "no")
    await store.finish_attempt("admin", bad.id, attempt(1), ExecutionStatus.DEAD_LETTERED, error=error)
    assert (await store.get_event("admin", ev.id)).status is EventStatus.FAILED
    dead = await store.get_execution("admin", bad.id)
    assert (dead.error, dead.attempts[0].status) == (error, ExecutionStatus.DEAD_LETTERED)


async def test_concurrent_finishes_settle_the_event_once_all_are_final(store: ContractStore) -> None:
    ev = event()
    xs = [execution(ev, f"a{i}") for i in range(8)]
    await store.append("admin", [ev], xs)
    await asyncio.gather(*(store.finish_attempt("admin", x.id, attempt(1), ExecutionStatus.SUCCEEDED) for x in xs))
    assert (await store.get_event("admin", ev.id)).status is EventStatus.COMPLETED


async def test_attempts_on_unknown_executions_are_not_found(store: ContractStore) -> None:
    for execution_id in (new_id(), "bogus"):
        start = store.start_attempt("admin", execution_id, attempt(1))
        assert await reason_of(start, NotFound) == "EXECUTION_NOT_FOUND"
        finish = store.finish_attempt("admin", execution_id, attempt(1), ExecutionStatus.FAILED)
        assert await reason_of(finish, NotFound) == "EXECUTION_NOT_FOUND"


async def test_unfinished_executions_oldest_first_with_attempts(store: ContractStore) -> None:
    xs = [execution(at=T0 + timedelta(seconds=i)) for i in range(6)]
    await store.append("admin", [], list(reversed(xs)))
    await store.start_attempt("admin", xs[1].id, attempt(1))  # running
    await store.finish_attempt("admin", xs[2].id, attempt(1), ExecutionStatus.SUCCEEDED)
    await store.start_attempt("admin", xs[3].id, attempt(1))
    retry = T0 + timedelta(hours=1)
    await store.finish_attempt("admin", xs[3].id, attempt(1), ExecutionStatus.SCHEDULED, next_attempt_at=retry)
    await store.finish_attempt("admin", xs[5].id, attempt(1), ExecutionStatus.CANCELLED)
    unfinished = await store.unfinished_executions("admin")
    assert [x.id for x in unfinished] == [xs[0].id, xs[1].id, xs[3].id, xs[4].id]
    assert [x.status for x in unfinished] == [
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.SCHEDULED,
        ExecutionStatus.PENDING,
    ]
    assert [len(x.attempts) for x in unfinished] == [0, 1, 1, 0]
    assert unfinished[2].next_attempt_at == retry
    assert [x.id for x in await store.unfinished_executions("admin", limit=2)] == [xs[0].id, xs[1].id]


# --- listing -------------------------------------------------------------------------------


async def test_list_events_filters(store: ContractStore) -> None:
    types = ["users.created", "users.deleted", "users.profile.updated", "orders.created", "users_x.created", "users"]
    evs = [event(t, at=T0 + timedelta(seconds=i), correlation_id=f"c{i % 2}") for i, t in enumerate(types)]
    await store.append("admin", evs, [execution(evs[0])])

    async def types_of(f: EventFilter) -> list[str]:
        return [e.type for e in (await store.list_events("admin", f)).items]

    assert await types_of(EventFilter()) == list(reversed(types))  # newest first
    assert await types_of(EventFilter(type_pattern="*")) == list(reversed(types))
    assert await types_of(EventFilter(type_pattern="users.created")) == ["users.created"]
    assert await types_of(EventFilter(type_pattern="users.*")) == ["users.deleted", "users.created"]
    assert await types_of(EventFilter(type_pattern="*.created")) == [
        "users_x.created",
        "orders.created",
        "users.created",
    ]
    assert await types_of(EventFilter(type_pattern="users.**")) == [
        "users",
        "users.profile.updated",
        "users.deleted",
        "users.created",
    ]
    assert await types_of(EventFilter(type_pattern="**.created")) == [
        "users_x.created",
        "orders.created",
        "users.created",
    ]
    assert await types_of(EventFilter(type_pattern="users.**.updated")) == ["users.profile.updated"]
    assert await types_of(EventFilter(type_pattern="users")) == ["users"]
    assert await types_of(EventFilter(correlation_id="c1")) == ["users", "orders.created", "users.deleted"]
    assert await types_of(EventFilter(status=EventStatus.PROCESSING)) == ["users.created"]
    window = EventFilter(start_time=T0 + timedelta(seconds=1), end_time=T0 + timedelta(seconds=3))
    assert await types_of(window) == ["users.profile.updated", "users.deleted"]
    for bad in ("Users.*", "users..x", "users.*x", "a b"):
        with pytest.raises(InvalidArgument):
            await store.list_events("admin", EventFilter(type_pattern=bad))


async def walk(list_page: Any, page_size: int) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await list_page(page_size, token)
        assert len(page.items) <= page_size
        ids += [item.id for item in page.items]
        token = page.next_page_token
        if not token:
            return ids


async def test_list_events_pagination_has_no_gaps_or_duplicates(store: ContractStore) -> None:
    # several events share a timestamp, so the id must break ties
    evs = [event("users.created" if i % 3 else "orders.created", at=T0 + timedelta(seconds=i // 4)) for i in range(23)]
    await store.append("admin", evs, [])
    newest_first = [e.id for e in sorted(evs, key=lambda e: (e.time, e.id), reverse=True)]
    for size in (1, 5, 23, 100):
        ids = await walk(lambda n, t: store.list_events("admin", EventFilter(), n, t), size)
        assert ids == newest_first
    users = [i for i in newest_first if next(e for e in evs if e.id == i).type == "users.created"]
    f = EventFilter(type_pattern="users.*")
    assert await walk(lambda n, t: store.list_events("admin", f, n, t), 4) == users


async def test_list_executions_filters_and_pages(store: ContractStore) -> None:
    ev = event(correlation_id="corr")
    xs = [execution(ev if i < 4 else None, f"a{i % 3}", at=T0 + timedelta(seconds=i // 2)) for i in range(10)]
    await store.append("admin", [ev], xs)
    await store.finish_attempt("admin", xs[7].id, attempt(1), ExecutionStatus.FAILED)
    await store.finish_attempt("admin", xs[8].id, attempt(1), ExecutionStatus.DEAD_LETTERED)
    newest_first = [x.id for x in sorted(xs, key=lambda x: (x.created_at, x.id), reverse=True)]

    async def ids(f: ExecutionFilter) -> list[str]:
        return await walk(lambda n, t: store.list_executions("admin", f, n, t), 3)

    assert await ids(ExecutionFilter()) == newest_first
    assert await ids(ExecutionFilter(action_name="a1")) == [
        i for i in newest_first if i in {xs[1].id, xs[4].id, xs[7].id}
    ]
    assert await ids(ExecutionFilter(event_id=ev.id)) == [i for i in newest_first if i in {x.id for x in xs[:4]}]
    assert await ids(ExecutionFilter(correlation_id="corr")) == await ids(ExecutionFilter(event_id=ev.id))
    assert await ids(ExecutionFilter(status=ExecutionStatus.FAILED)) == [xs[7].id]
    dead_or_failed = ExecutionFilter(statuses=frozenset({ExecutionStatus.FAILED, ExecutionStatus.DEAD_LETTERED}))
    assert set(await ids(dead_or_failed)) == {xs[7].id, xs[8].id}
    window = ExecutionFilter(start_time=T0 + timedelta(seconds=1), end_time=T0 + timedelta(seconds=2))
    assert set(await ids(window)) == {xs[2].id, xs[3].id}
    listed = (await store.list_executions("admin", ExecutionFilter(), 1)).items[0]
    assert listed.attempts == []


async def test_page_sizes_and_bad_tokens(store: ContractStore) -> None:
    await store.append("admin", [event() for _ in range(MAX_PAGE_SIZE + 1)], [])
    default = await store.list_events("admin", EventFilter(), page_size=0)
    assert len(default.items) == 50 and default.next_page_token
    capped = await store.list_events("admin", EventFilter(), page_size=MAX_PAGE_SIZE * 5)
    assert len(capped.items) == MAX_PAGE_SIZE and capped.next_page_token
    last = await store.list_events("admin", EventFilter(), page_size=10, page_token=capped.next_page_token)
    assert len(last.items) == 1 and last.next_page_token == ""
    with pytest.raises(InvalidArgument):
        await store.list_events("admin", EventFilter(), page_size=-1)
    await store.create_action(action("a"))
    await store.create_action(action("b"))
    actions_token = (await store.list_actions("admin", page_size=1)).next_page_token
    for bad in ("garbage!", "eyJrIjoiZXZlbnRzIn0", actions_token, default.next_page_token[:-3]):
        assert await reason_of(store.list_events("admin", EventFilter(), 5, bad), InvalidArgument) == (
            "INVALID_PAGE_TOKEN"
        )
    with pytest.raises(InvalidArgument):
        await store.list_executions("admin", ExecutionFilter(), 5, default.next_page_token)
    with pytest.raises(InvalidArgument):
        await store.list_tenants(page_token="%%%")


async def test_data_survives_close_and_reopen(store: ContractStore, backend: Backend) -> None:
    await store.create_tenant(Tenant("acme", "Acme"))
    await store.create_action(action("notify", "acme"))
    await store.update_action(action("notify", "acme", description="v2"))
    ev = event(tenant="acme")
    x = execution(ev)
    await store.append("acme", [ev], [x])
    await store.start_attempt("acme", x.id, attempt(1))
    await store.close()

    reopened = backend.make()
    await reopened.open()
    try:
        assert (await reopened.get_tenant("acme")).display_name == "Acme"
        assert (await reopened.get_action("acme", "notify")).version == 2
        assert (await reopened.get_event("acme", ev.id)).status is EventStatus.PROCESSING
        [pending] = await reopened.unfinished_executions("acme")
        assert (pending.id, pending.status, len(pending.attempts)) == (x.id, ExecutionStatus.RUNNING, 1)
        await reopened.create_tenant(Tenant("globex"))
    finally:
        await reopened.close()
    third = backend.make()
    async with third:
        assert [t.slug for t in (await third.list_tenants()).items] == ["acme", "admin", "globex"]
        assert (await third.list_events("globex", EventFilter())).items == []


async def test_a_second_store_sees_tenants_created_by_the_first(store: ContractStore, backend: Backend) -> None:
    async with backend.make() as other:
        await store.create_tenant(Tenant("late"))
        await store.append("late", [event(tenant="late")], [])
        assert len((await other.list_events("late", EventFilter())).items) == 1


# --- failures at the edge --------------------------------------------------------------------


async def test_values_json_cannot_hold_are_invalid_arguments(store: ContractStore) -> None:
    bad = event()
    bad.data = {"when": {1, 2}}  # a set is not JSON
    with pytest.raises(InvalidArgument):
        await store.append("admin", [bad], [])
    assert (await store.list_events("admin", EventFilter())).items == []


async def test_a_closed_store_is_unavailable(store: ContractStore) -> None:
    await store.close()
    with pytest.raises(Unavailable):
        await store.get_tenant("admin")
    with pytest.raises(Unavailable):
        await store.list_events("admin", EventFilter())


async def test_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        await PostgresStore("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2).open()


async def test_unusable_data_directory_is_unavailable(tmp_path: Path) -> None:
    occupied = tmp_path / "file"
    occupied.write_text("not a directory")
    with pytest.raises(Unavailable):
        await SqliteStore(occupied).open()


async def test_embedded_writes_wait_for_another_process_holding_the_write_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "data")
    await store.open()
    try:
        other = sqlite3.connect(store.path_of("admin"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        ev = event()
        writing = asyncio.create_task(store.append("admin", [ev], [execution(ev)]))
        await asyncio.sleep(0.3)
        assert not writing.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
        ticker.cancel()
        assert ticks >= 15  # the loop kept running while the write waited for the lock
        assert (await store.get_event("admin", ev.id)).id == ev.id
        other.close()
    finally:
        await store.close()


async def test_listed_executions_carry_their_attempts(store: ContractStore) -> None:
    tried, fresh = execution(), execution()
    await store.append("admin", [], [tried, fresh])
    for number in (1, 2):
        await store.start_attempt("admin", tried.id, attempt(number))
        status = ExecutionStatus.SCHEDULED if number == 1 else ExecutionStatus.FAILED
        await store.finish_attempt("admin", tried.id, attempt(number), status, error=ExecutionError("boom", "no"))
    page = await store.list_executions("admin", ExecutionFilter(), 10)
    by_id = {x.id: x for x in page.items}
    assert [a.number for a in by_id[tried.id].attempts] == [1, 2] and by_id[tried.id].attempt_count == 2
    assert by_id[fresh.id].attempts == []
