"""The weekly partitions of each PostgreSQL tenant's ``events`` table (migration 0009).

``events`` is partitioned by range of ``time``: one partition per UTC week (Monday 00:00 to
the next Monday), named ``events_wYYYYMMDD`` after its Monday, and ``events_default`` for
any event no week covers (far in the past or the future). :func:`maintain`, run by the
retention sweep every minute, keeps it so:

* the current week and the next :data:`AHEAD_WEEKS` have a partition before events reach
  them; rows the default partition already holds for such a week move into it;
* with a cutoff (the retention policy), every week that ended at or before it is dropped
  whole: its events are counted, their deduplication keys deleted, the table dropped. The
  rows older than the cutoff in the week it falls in and in the default partition are left
  to retention's batched delete, so exactly what is older goes, nothing newer.

Every change is its own short transaction under a lock timeout: a week that cannot get its
locks (a long read holding ``events``) is skipped and tried again at the next sweep; the
batched delete removes its old rows meanwhile, so retention stays exact either way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
#: weeks after the current one given a partition ahead of time
AHEAD_WEEKS = 2
#: how long a change waits for its locks before it is left to the next sweep
LOCK_TIMEOUT = "1s"
DEFAULT = "events_default"

_NAME = re.compile(r"^events_w(\d{8})$")
#: a change that could not be made now (locks, a racing sweep of another process)
_SKIPPED = (
    asyncpg.LockNotAvailableError,
    asyncpg.DeadlockDetectedError,
    asyncpg.DuplicateTableError,
    asyncpg.UndefinedTableError,
    asyncpg.CheckViolationError,
    asyncpg.ObjectInUseError,
)


@dataclass(frozen=True, slots=True)
class Week:
    """One weekly partition: events with ``start <= time < start + WEEK``."""

    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + WEEK

    @property
    def name(self) -> str:
        return f"events_w{self.start:%Y%m%d}"


def week_of(t: datetime) -> Week:
    """The week (UTC, from Monday) holding ``t``."""
    day = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Week(day - timedelta(days=day.weekday()))


def _literal(t: datetime) -> str:
    # DDL takes no parameters; the text is built here from a datetime, never from input
    return "'" + t.astimezone(UTC).isoformat() + "'"


async def weeks(conn: Any, schema: str) -> list[Week] | None:
    """The weekly partitions of ``schema``'s events, oldest first; ``None`` when ``events`` is
    not partitioned."""
    kind = await conn.fetchval(
        "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = 'events'",
        schema,
    )
    if kind != "p":
        return None
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE n.nspname = $1 AND p.relname = 'events'",
        schema,
    )
    found = []
    for row in rows:
        match = _NAME.match(row[0])
        if match is not None:
            found.append(Week(datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)))
    return sorted(found, key=lambda w: w.start)


def _q(schema: str, name: str) -> str:
    return '"' + schema.replace('"', '""') + '"."' + name + '"'


async def create_week(conn: Any, schema: str, week: Week) -> None:
    """Give ``week`` its partition, moving in what the default partition holds of it.

    Attaching (rather than ``CREATE TABLE ... PARTITION OF``) takes only a SHARE UPDATE
    EXCLUSIVE lock on ``events``: publishes go on; the default partition is locked while
    its rows of that week move."""
    events, default, new = _q(schema, "events"), _q(schema, DEFAULT), _q(schema, week.name)
    lo, hi = _literal(week.start), _literal(week.end)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(f"LOCK TABLE {events} IN SHARE UPDATE EXCLUSIVE MODE")
        await conn.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        await conn.execute(f"CREATE TABLE {new} (LIKE {events} INCLUDING DEFAULTS)")
        await conn.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE time >= {lo} AND time < {hi} RETURNING *)"
            f" INSERT INTO {new} SELECT * FROM moved"
        )
        # the check lets ATTACH skip scanning the new partition
        await conn.execute(f"ALTER TABLE {new} ADD CONSTRAINT week CHECK (time >= {lo} AND time < {hi})")
        await conn.execute(f"ALTER TABLE {events} ATTACH PARTITION {new} FOR VALUES FROM ({lo}) TO ({hi})")
        await conn.execute(f"ALTER TABLE {new} DROP CONSTRAINT week")


async def drop_week(conn: Any, schema: str, week: Week) -> int:
    """Drop ``week``'s partition with its events' deduplication keys; the events it held."""
    part = _q(schema, week.name)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # no more writes into it (reads go on) while it is counted and its keys deleted
        await conn.execute(f"LOCK TABLE {part} IN SHARE MODE")
        count = int(await conn.fetchval(f"SELECT COUNT(*) FROM {part}"))
        await conn.execute(f"DELETE FROM {_q(schema, 'event_dedup')} WHERE event_id IN (SELECT id FROM {part})")
        await conn.execute(f"DROP TABLE {part}")
    return count


async def maintain(conn: Any, schema: str, now: datetime, before: datetime | None) -> int:
    """Create the coming weeks of ``schema``'s events and, with ``before``, drop the weeks
    that ended by then; the number of events dropped. A change that cannot be made now is
    logged and left to the next sweep."""
    existing = await weeks(conn, schema)
    if existing is None:
        return 0
    have = {w.start for w in existing}
    current = week_of(now)
    for i in range(AHEAD_WEEKS + 1):
        week = Week(current.start + i * WEEK)
        if week.start not in have:
            try:
                await create_week(conn, schema, week)
            except _SKIPPED as exc:
                log.info("partition %s.%s not created now: %s", schema, week.name, exc)
    dropped = 0
    if before is not None:
        for week in existing:
            if week.end > before:
                break
            try:
                dropped += await drop_week(conn, schema, week)
            except _SKIPPED as exc:
                log.info("partition %s.%s not dropped now: %s", schema, week.name, exc)
    return dropped


__all__ = ["AHEAD_WEEKS", "DEFAULT", "WEEK", "Week", "create_week", "drop_week", "maintain", "week_of", "weeks"]
