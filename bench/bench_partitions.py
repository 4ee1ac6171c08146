"""PostgreSQL retention with weekly partitions against the batched delete of an unpartitioned
events table, in one run: the same events (``BENCH_PARTITIONS_EVENTS``, default 200,000, spread
evenly over 60 days) in two fresh databases, one migrated to 0009 (weekly partitions) and one
stopped before it; then a 30-day policy is applied once (as when a policy is first set or the
sweep catches up), and lookups by id (``get_event``) are timed on both, since an id lookup
probes every partition.

``python -m bench partitions`` (needs PostgreSQL at ``NEOACTIONS_TEST_POSTGRES`` or
127.0.0.1:5432, database ``test``).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from neoactions.domain.ids import new_id
from neoactions.domain.model import ADMIN_TENANT, Event
from neoactions.server.eventstore.port import RetentionPolicy
from neoactions.server.eventstore.retention import RetentionKeeper
from neoactions.server.persistence import PostgresStore, migrations, pg_partitions
from neoactions.server.persistence import postgres as postgres_module

N = int(os.environ.get("BENCH_PARTITIONS_EVENTS", "200000"))
DSN = os.environ.get("NEOACTIONS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DAYS = 60
POLICY_DAYS = 30
LOOKUPS = 2000


@asynccontextmanager
async def _database() -> AsyncIterator[str]:
    name = f"neoactions_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(DSN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield urlunsplit(urlsplit(DSN)._replace(path="/" + name))
    finally:
        conn = await asyncpg.connect(DSN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _before_0009(dialect: str, track: str) -> tuple[migrations.Migration, ...]:
    return tuple(m for m in migrations.load(dialect, track) if track != migrations.TENANT_TRACK or m.version < 9)


async def _tenants() -> list[str]:
    return [ADMIN_TENANT]


async def _run(dsn: str, partitioned: bool, now: datetime, events: list[Event]) -> dict[str, float]:
    original = migrations.load
    if not partitioned:
        setattr(postgres_module, "load", _before_0009)  # noqa: B010 (a module attribute, swapped back below)
    store = PostgresStore(dsn, max_size=4)
    try:
        await store.open()
    finally:
        setattr(postgres_module, "load", original)  # noqa: B010
    try:
        keeper = RetentionKeeper(store, _tenants)
        if partitioned:  # the weeks the sweeps of the last 60 days created as time went by
            for days_ago in range(DAYS + 7, -1, -7):
                await store.maintain_event_partitions(ADMIN_TENANT, now - timedelta(days=days_ago), None)
        for i in range(0, len(events), 5000):
            await store.append(ADMIN_TENANT, events[i : i + 5000], [])
        async with store._pool.acquire() as conn:
            await conn.execute("ANALYZE admin.events")
        ids = [e.id for e in random.Random(7).sample(events, LOOKUPS)]
        began = time.perf_counter()
        for event_id in ids:
            await store.get_event(ADMIN_TENANT, event_id)
        lookup = (time.perf_counter() - began) / LOOKUPS
        await store.set_retention(ADMIN_TENANT, RetentionPolicy(events_seconds=POLICY_DAYS * 86400))
        began = time.perf_counter()
        removed = await keeper.apply(ADMIN_TENANT, now=now)
        seconds = time.perf_counter() - began
        left = (await store.usage(ADMIN_TENANT)).tables["events"].rows
        return {"seconds": seconds, "removed": removed.events, "left": left, "lookup": lookup}
    finally:
        await store.close()


async def _main() -> str:
    now = datetime.now(UTC)
    step = timedelta(days=DAYS) / N
    events = [
        Event(id=new_id(), tenant=ADMIN_TENANT, type="orders.created", data={"i": i}, time=now - i * step)
        for i in range(N)
    ]
    results = {}
    for partitioned in (False, True):
        async with _database() as dsn:
            results[partitioned] = await _run(dsn, partitioned, now, events)
    base, part = results[False], results[True]
    weeks = len({pg_partitions.week_of(e.time).start for e in events}) + pg_partitions.AHEAD_WEEKS
    lines = [
        f"{N:,} events over {DAYS} days, a {POLICY_DAYS}-day policy applied once (batches of 1,000); "
        f"{LOOKUPS:,} `get_event` by id, one at a time; partitioned: about {weeks} weekly partitions + default",
        "",
        "| measurement | unpartitioned, batched delete (baseline) | weekly partitions | ratio |",
        "|---|---|---|---|",
        f"| retention: events removed | {base['removed']:,.0f} | {part['removed']:,.0f} | |",
        f"| retention: events left | {base['left']:,.0f} | {part['left']:,.0f} | |",
        f"| retention: wall time | {base['seconds']:.2f} s | {part['seconds']:.2f} s"
        f" | {base['seconds'] / part['seconds']:.1f}x faster |",
        f"| `get_event` by id | {base['lookup'] * 1e6:.0f} µs | {part['lookup'] * 1e6:.0f} µs"
        f" | {part['lookup'] / base['lookup']:.2f}x the baseline |",
    ]
    return "\n".join(lines)


def main() -> str:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(main())
