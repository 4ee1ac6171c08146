"""PostgreSQL's weekly partitions of ``events`` (migration 0009, persistence/pg_partitions.py):
a tenant gets its partitions when created; converting a table that holds events keeps every
one; retention drops whole weeks older than the policy and deletes exactly the older rows of
the week the cutoff falls in, while events are published; an event dated outside every
partition lands in the default one, is still found, and moves into its week when that week
gets a partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from store_backends import POSTGRES_DSN, require_postgres, with_database

from neoactions.domain.ids import new_id
from neoactions.domain.model import ADMIN_TENANT, Event, Tenant
from neoactions.server.eventstore.port import EventSelection, RetentionPolicy
from neoactions.server.eventstore.retention import RetentionKeeper
from neoactions.server.persistence import PostgresStore, migrations, pg_partitions
from neoactions.server.persistence import postgres as postgres_module
from neoactions.server.store import EventFilter

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 9, 15, 30, tzinfo=UTC)  # a Wednesday: week of Monday 2026-12-07


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    require_postgres()
    name = f"neoactions_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(POSTGRES_DSN, name)
    finally:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(dsn, max_size=4)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def events_at(times: list[datetime], tenant: str = ADMIN_TENANT) -> list[Event]:
    return [
        Event(id=new_id(), tenant=tenant, type="orders.created", data={"i": i}, time=t) for i, t in enumerate(times)
    ]


async def partitions(dsn: str, schema: str) -> dict[str, int]:
    """Each leaf partition of ``schema``.events and how many rows it holds."""
    conn = await asyncpg.connect(dsn)
    try:
        leaves = await conn.fetch(
            "SELECT relid::regclass::text FROM pg_partition_tree($1::regclass) WHERE isleaf", f'"{schema}".events'
        )
        out = {}
        for (name,) in leaves:
            out[name.rsplit(".", 1)[-1]] = int(await conn.fetchval(f"SELECT COUNT(*) FROM {name}"))
        return out
    finally:
        await conn.close()


def week_names(first: datetime, count: int) -> list[str]:
    start = pg_partitions.week_of(first).start
    return [pg_partitions.Week(start + i * pg_partitions.WEEK).name for i in range(count)]


async def admin_only() -> list[str]:
    return [ADMIN_TENANT]


async def all_ids(store: PostgresStore, tenant: str = ADMIN_TENANT) -> set[str]:
    envelopes, _ = await store.scan_envelopes(tenant, EventSelection(), None, 1_000_000)
    return {e["id"] for e in envelopes}


async def test_a_new_tenant_has_this_weeks_and_the_next_weeks_partitions(store: PostgresStore, dsn: str) -> None:
    await store.create_tenant(Tenant("acme"))
    now = datetime.now(UTC)
    parts = await partitions(dsn, "tenant_acme")
    expected = {"events_default", *week_names(now, pg_partitions.AHEAD_WEEKS + 1)}
    assert set(parts) == expected
    # the sweep creates the weeks to come as time goes on, and is idempotent
    later = now + timedelta(weeks=3)
    for _ in range(2):
        assert await store.maintain_event_partitions("acme", later, None) == 0
    assert set(await partitions(dsn, "tenant_acme")) == expected | set(week_names(later, pg_partitions.AHEAD_WEEKS + 1))


async def test_converting_a_table_of_events_keeps_every_one(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def before_0009(dialect: str, track: str) -> tuple[migrations.Migration, ...]:
        return tuple(m for m in migrations.load(dialect, track) if track != migrations.TENANT_TRACK or m.version < 9)

    now = datetime.now(UTC)
    # an hour apart over 400 days back, and a few days ahead
    times = [now - timedelta(hours=7 * i) for i in range(-20, 400 * 24 // 7)]
    old_store = PostgresStore(dsn, max_size=2)
    monkeypatch.setattr(postgres_module, "load", before_0009)
    await old_store.open()
    try:
        await old_store.create_tenant(Tenant("acme"))
        stored = events_at(times, "acme")
        for i in range(0, len(stored), 500):
            await old_store.append("acme", stored[i : i + 500], [])
        assert await partitions(dsn, "tenant_acme") == {}  # not partitioned yet
    finally:
        await old_store.close()
    monkeypatch.undo()

    store = PostgresStore(dsn, max_size=2)
    await store.open()
    try:
        assert await all_ids(store, "acme") == {e.id for e in stored}
        parts = await partitions(dsn, "tenant_acme")
        assert sum(parts.values()) == len(stored)
        # a partition for each week of the last year that holds events; older ones in the default
        last_year = pg_partitions.week_of(now).start - 52 * pg_partitions.WEEK
        assert parts["events_default"] == sum(1 for t in times if t < last_year)
        assert set(week_names(last_year, 53 + pg_partitions.AHEAD_WEEKS)) <= set(parts)
        got = await store.get_event("acme", stored[-1].id)
        assert got.time == stored[-1].time
        assert (await store.usage("acme")).tables["events"].rows == len(stored)
    finally:
        await store.close()


async def test_retention_drops_old_weeks_and_deletes_exactly_the_older_rows_while_publishing(
    store: PostgresStore, dsn: str
) -> None:
    # the sweeps of 7 weeks ago onward created those weeks' partitions as time went by
    keeper = RetentionKeeper(store, admin_only, batch=50)
    for weeks_ago in range(7, -1, -1):
        await keeper.apply(ADMIN_TENANT, now=NOW - timedelta(weeks=weeks_ago))
    before = NOW - timedelta(days=30)  # Monday 2026-11-09 15:30
    times = [NOW - timedelta(hours=5 * i) for i in range(1, 8 * 7 * 24 // 5)]
    times += [before - timedelta(microseconds=1), before, before + timedelta(microseconds=1)]
    stored = events_at(times)
    await store.append(ADMIN_TENANT, stored, [])
    old = {e.id for e in stored if e.time < before}
    kept = {e.id for e in stored} - old
    async with store._pool.acquire() as conn:  # deduplication keys of an old and a kept event
        oldest, newest = min(stored, key=lambda e: e.time), max(stored, key=lambda e: e.time)
        for key, e in (("old", oldest), ("kept", newest)):
            await conn.execute(
                "INSERT INTO admin.event_dedup (key, event_id, created_at) VALUES ($1, $2, $3)",
                key,
                uuid.UUID(e.id),
                NOW,
            )
    before_parts = await partitions(dsn, ADMIN_TENANT)
    first = pg_partitions.week_of(NOW - timedelta(weeks=7))
    weeks = [pg_partitions.Week(first.start + i * pg_partitions.WEEK) for i in range(8)]
    whole = [w.name for w in weeks if w.end <= before]
    assert whole and all(before_parts[n] > 0 for n in whole)
    await store.set_retention(ADMIN_TENANT, RetentionPolicy(events_seconds=30 * 86400))

    published: list[str] = []

    async def publish() -> None:
        for i in range(30):
            batch = events_at([NOW - timedelta(days=30) + timedelta(seconds=i + 1), NOW])
            await store.append(ADMIN_TENANT, batch, [])
            published.extend(e.id for e in batch)
            await asyncio.sleep(0)

    removed, _ = await asyncio.gather(keeper.apply(ADMIN_TENANT, now=NOW), publish())
    assert removed.events == len(old)
    assert await all_ids(store) == kept | set(published)
    after_parts = await partitions(dsn, ADMIN_TENANT)
    assert not set(whole) & set(after_parts)  # dropped whole
    boundary = pg_partitions.week_of(before).name
    assert (
        after_parts[boundary]
        == sum(1 for e in stored if e.id in kept and pg_partitions.week_of(e.time).name == boundary) + 30
    )
    async with store._pool.acquire() as conn:
        keys = {r[0] for r in await conn.fetch("SELECT key FROM admin.event_dedup")}
    assert keys == {"kept"}


async def test_an_event_outside_every_partition_lands_in_the_default_one_and_is_found(
    store: PostgresStore, dsn: str
) -> None:
    now = datetime.now(UTC)
    far = [now + timedelta(days=200), now - timedelta(days=3 * 365)]
    stored = events_at([*far, now])
    await store.append(ADMIN_TENANT, stored, [])
    parts = await partitions(dsn, ADMIN_TENANT)
    assert parts["events_default"] == 2
    for e in stored:
        assert (await store.get_event(ADMIN_TENANT, e.id)).time == e.time
    listed = await store.list_events(ADMIN_TENANT, EventFilter(start_time=now + timedelta(days=100)))
    assert [e.id for e in listed.items] == [stored[0].id]
    # when its week comes near, the sweep gives it a partition and moves the event in
    await store.maintain_event_partitions(ADMIN_TENANT, far[0] - timedelta(days=7), None)
    parts = await partitions(dsn, ADMIN_TENANT)
    assert parts["events_default"] == 1
    assert parts[pg_partitions.week_of(far[0]).name] == 1
    assert (await store.get_event(ADMIN_TENANT, stored[0].id)).time == far[0]
    usage = await store.usage(ADMIN_TENANT)
    assert usage.tables["events"].rows == 3 and usage.tables["events"].bytes > 0
