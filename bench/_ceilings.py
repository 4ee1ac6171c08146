"""Raw ceilings the end-to-end figures are read against, measured in the same run.

- Redis: a pipelined ``XADD`` loop (redis-py, no transaction), messages shaped like a
  work-queue entry (tenant + execution id);
- PostgreSQL: ``asyncpg`` ``executemany`` of rows shaped like executions into a real
  (WAL-logged) table, one transaction per batch, ``synchronous_commit = on``; and one
  row per transaction (the commit, i.e. fsync, rate);
- SQLite: the same two shapes with ``sqlite3``, WAL, ``synchronous = FULL`` (the
  embedded store's settings);
- gRPC: ``bench._echo`` (a ``PublishEvents`` that answers each event with itself) in one
  process, driven by the same ``bench._publisher`` client as the real server.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import redis

from bench._procs import Listening, child_env, run_json

COLUMNS = (
    "id, action_id, action_name, action_version, handler_type, event_id, status, input, "
    "idempotency_key, correlation_id, causation_id, priority, mode, attempt_count, created_at, updated_at"
)
PG_TABLE = """CREATE TABLE bench_executions (
    id uuid PRIMARY KEY, action_id uuid, action_name text NOT NULL, action_version integer NOT NULL,
    handler_type text NOT NULL, event_id uuid, status text NOT NULL, input jsonb, idempotency_key text NOT NULL,
    correlation_id text NOT NULL, causation_id text NOT NULL, priority smallint NOT NULL, mode text NOT NULL,
    attempt_count integer NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"""
SQLITE_TABLE = """CREATE TABLE bench_executions (
    id TEXT PRIMARY KEY, action_id TEXT, action_name TEXT NOT NULL, action_version INTEGER NOT NULL,
    handler_type TEXT NOT NULL, event_id TEXT, status TEXT NOT NULL, input TEXT, idempotency_key TEXT NOT NULL,
    correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL, priority INTEGER NOT NULL, mode TEXT NOT NULL,
    attempt_count INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)"""


def _row(i: int, action: uuid.UUID, now: datetime) -> tuple:
    ex, ev = uuid.uuid4(), uuid.uuid4()
    data = json.dumps({"seq": i, "order_id": f"o-{i}", "amount": 120.5, "region": "eu"})
    return (
        ex,
        action,
        "bench-noop",
        1,
        "python",
        ev,
        "pending",
        data,
        str(ex),
        str(ev),
        str(ev),
        0,
        "async",
        0,
        now,
        now,
    )


def xadd(redis_url: str, count: int, pipeline: int) -> float:
    """Messages per second through pipelined ``XADD``."""
    r = redis.Redis.from_url(redis_url)
    key = f"neoactions-bench:xadd:{uuid.uuid4().hex[:8]}"
    ids = [uuid.uuid4().hex for _ in range(count)]
    try:
        t0 = time.perf_counter()
        for start in range(0, count, pipeline):
            p = r.pipeline(transaction=False)
            for execution_id in ids[start : start + pipeline]:
                p.xadd(key, {"tenant": "admin", "execution": execution_id})
            p.execute()
        elapsed = time.perf_counter() - t0
        assert r.xlen(key) == count
        return count / elapsed
    finally:
        r.delete(key)
        r.close()


async def postgres_patterns(
    url: str, ids: list[uuid.UUID], batch: int, workers: int = 32
) -> tuple[float, float, float]:
    """Executions/s of the start + finish writes alone, on rows already stored: ``(two
    transactions per execution through an asyncpg pool of 10 with its default reset on
    release, the same with no reset, the writes of ``batch`` executions in one transaction
    per step)``: what the store's write shape allows before any engine work."""
    start_q = "UPDATE bench_executions SET status = 'running', attempt_count = 1, updated_at = now() WHERE id = $1"
    finish_q = "UPDATE bench_executions SET status = 'succeeded', updated_at = now() WHERE id = $1"
    rates = []
    third = len(ids) // 3
    for reset, chunk in ((True, ids[:third]), (False, ids[third : 2 * third])):
        kwargs = {} if reset else {"reset": _no_reset}
        async with asyncpg.create_pool(url, min_size=10, max_size=10, **kwargs) as pool:
            todo = iter(chunk)

            async def worker(pool: asyncpg.Pool = pool, todo=todo) -> None:  # type: ignore[no-untyped-def]
                for execution_id in todo:
                    for q in (start_q, finish_q):
                        async with pool.acquire() as c, c.transaction():
                            await c.execute(q, execution_id)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(workers)))
            rates.append(len(chunk) / (time.perf_counter() - t0))
    conn = await asyncpg.connect(url)
    try:
        rest = ids[2 * third :]
        t0 = time.perf_counter()
        for i in range(0, len(rest), batch):
            part = rest[i : i + batch]
            for q in (start_q, finish_q):
                async with conn.transaction():
                    await conn.execute(q.replace("id = $1", "id = ANY($1::uuid[])"), part)
        rates.append(len(rest) / (time.perf_counter() - t0))
    finally:
        await conn.close()
    return rates[0], rates[1], rates[2]


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


async def postgres(url: str, count: int, batch: int, commit_seconds: float) -> tuple[float, float]:
    """``(rows/s with executemany batches, commits/s with one row per transaction)``;
    leaves ``bench_executions`` with the ``count`` batch rows for :func:`postgres_patterns`."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = on")
        await conn.execute(PG_TABLE)
        action, now = uuid.uuid4(), datetime.now(UTC)
        rows = [_row(i, action, now) for i in range(count)]
        q = f"INSERT INTO bench_executions ({COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 17))})"
        t0 = time.perf_counter()
        for start in range(0, count, batch):
            async with conn.transaction():
                await conn.executemany(q, rows[start : start + batch])
        many = count / (time.perf_counter() - t0)
        single = [_row(i, action, now) for i in range(100_000)]
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < commit_seconds:
            await conn.execute(q, *single[n])
            n += 1
        commits = n / (time.perf_counter() - t0)
        await conn.execute("DELETE FROM bench_executions WHERE id = ANY($1::uuid[])", [r[0] for r in single[:n]])
        return many, commits
    finally:
        await conn.close()


def sqlite(count: int, batch: int, commit_seconds: float) -> tuple[float, float]:
    """``(rows/s with executemany batches, commits/s with one row per transaction)``."""
    with tempfile.TemporaryDirectory(prefix="neoactions-bench-") as tmp:
        db = sqlite3.connect(Path(tmp) / "ceiling.db", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(SQLITE_TABLE)
        action, stamp = str(uuid.uuid4()), time.time_ns() // 1000
        rows = [tuple(str(v) if isinstance(v, uuid.UUID) else v for v in _row(i, action, stamp)) for i in range(count)]  # type: ignore[arg-type]
        q = f"INSERT INTO bench_executions ({COLUMNS}) VALUES ({', '.join('?' * 16)})"
        t0 = time.perf_counter()
        for start in range(0, count, batch):
            db.execute("BEGIN")
            db.executemany(q, rows[start : start + batch])
            db.execute("COMMIT")
        many = count / (time.perf_counter() - t0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < commit_seconds:
            row = list(rows[n % len(rows)])
            row[0] = f"single-{n}"
            db.execute(q, row)
            n += 1
        commits = n / (time.perf_counter() - t0)
        db.close()
        return many, commits


async def grpc_echo(log: Path, count: int, batch: int, in_flight: int) -> dict:
    """The publisher's burst against the bare echo server: its JSON result."""
    echo = Listening([sys.executable, "-m", "bench._echo"], child_env(), log)
    echo.start()
    try:
        await run_json("bench._publisher", echo.target, "burst", "0", str(min(count, 2000)), str(batch), "2")
        return await run_json("bench._publisher", echo.target, "burst", "0", str(count), str(batch), str(in_flight))
    finally:
        echo.stop()
