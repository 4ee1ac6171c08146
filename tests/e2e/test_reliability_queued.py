"""Queued mode at scale with real PostgreSQL and Redis: one api process, three workers.

(1) 5,000 queued executions while one worker is killed with ``kill -9`` twice: every
execution ends once in the store, and a handler ran twice only for attempts a kill cut
(recorded ``interrupted``), always with the execution's one idempotency key.
(7) Redis restarted without persistence during the load: nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2_grpc, events_pb2, events_pb2_grpc
from tests.conftest import require_postgres, require_redis
from tests.e2e.cluster import Cluster, status_counts, wait_for
from tests.e2e.conftest import _create_database, _drop_database
from tests.e2e.test_pipeline import action

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


@pytest.fixture
def database_url() -> Iterator[str]:
    require_postgres()
    require_redis()
    name, url = asyncio.run(_create_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_database(name))


async def publish(target: str, first: int, count: int, batch: int = 500) -> set[str]:
    """Publish ``jobs.submitted`` events ``first..first+count``; returns the accepted event ids."""
    accepted: set[str] = set()
    async with authorized_channel(target) as ch:
        events = events_pb2_grpc.EventServiceStub(ch)
        for start in range(first, first + count, batch):
            reply = await events.PublishEvents(
                events_pb2.PublishEventsRequest(
                    parent="tenants/admin",
                    events=[
                        events_pb2.Event(type="jobs.submitted", data_json=json.dumps({"n": i}))
                        for i in range(start, min(first + count, start + batch))
                    ],
                ),
                timeout=60,
            )
            accepted.update(r.event.id for r in reply.results)
    return accepted


async def create_counting_action(target: str, sink: Path, sleep: float, log_end: bool = False) -> None:
    async with authorized_channel(target) as ch:
        await actions_pb2_grpc.ActionServiceStub(ch).CreateAction(
            action(
                "count",
                ["jobs.submitted"],
                "shop.reliability:count",
                config={"sink": str(sink), "sleep": sleep, "log_end": log_end},
                execution_mode="EXECUTION_MODE_QUEUED",
            )
        )


def sink_lines(sink: Path) -> list[list[str]]:
    return [line.split(",") for line in sink.read_text().splitlines() if line]


@pytest.mark.slow
async def test_5000_queued_executions_survive_two_worker_kills(database_url: str, tmp_path: Path) -> None:
    total = 5000
    sink = tmp_path / "sink.csv"
    cluster = Cluster(database_url, tmp_path, workers=3)
    cluster.start()
    try:
        await create_counting_action(cluster.api.target, sink, sleep=0.05, log_end=True)
        accepted = await publish(cluster.api.target, 0, total)
        assert len(accepted) == total

        for fraction, busy in ((0.3, True), (0.6, False)):

            async def reached(fraction: float = fraction, busy: bool = busy) -> bool:
                if not sink.exists():
                    return False
                lines = [line for line in sink_lines(sink) if len(line) == 6]
                if sum(1 for line in lines if line[5] == "start") < total * fraction:
                    return False
                # the first kill hits worker 0 while handlers run in it (started, not ended): one
                # caught between batches cuts nothing, and the test would prove nothing
                pid = str(cluster.workers[0].pid)
                running = sum(1 if line[5] == "start" else -1 for line in lines if line[3] == pid)
                return not busy or running >= 4

            await wait_for(reached, within=180, every=0.01)
            cluster.workers[0].kill()  # kill -9: no drain, no lease release, entries left pending
            cluster.restart_worker(0)

        async def all_final() -> bool:
            counts = await status_counts(database_url)
            return sum(counts.values()) == total and counts.get("succeeded", 0) == total

        await wait_for(all_final, within=300, every=0.5)
    finally:
        cluster.stop()

    conn = await asyncpg.connect(database_url)
    try:
        executions = {
            str(r["id"]): r
            for r in await conn.fetch("SELECT id, event_id, idempotency_key, attempt_count FROM admin.executions")
        }
        attempts = collections.defaultdict(list)
        for r in await conn.fetch("SELECT execution_id, number, status, error FROM admin.attempts"):
            attempts[str(r["execution_id"])].append(r)
        events = {str(r["id"]) for r in await conn.fetch("SELECT id FROM admin.events")}
    finally:
        await conn.close()

    # every accepted event has exactly one execution, and it ended (succeeded) once
    assert events == accepted
    assert collections.Counter(str(r["event_id"]) for r in executions.values()) == dict.fromkeys(accepted, 1)

    runs = collections.defaultdict(list)
    for execution_id, key, attempt, _, _, kind in sink_lines(sink):
        if kind == "start":
            runs[execution_id].append((key, int(attempt)))
    assert set(runs) == set(executions), "every execution ran, and only executions that exist"
    interrupted_total = 0
    for execution_id, seen in runs.items():
        row = executions[execution_id]
        assert {key for key, _ in seen} == {row["idempotency_key"]}, "one stable idempotency key per execution"
        cut = [
            a
            for a in attempts[execution_id]
            if a["error"] is not None and json.loads(a["error"])["type"] == "interrupted"
        ]
        interrupted_total += len(cut)
        # a handler ran more than once only for attempts cut by a kill
        assert len(seen) <= 1 + len(cut), (execution_id, seen, attempts[execution_id])
        succeeded = [a for a in attempts[execution_id] if a["status"] == "succeeded"]
        assert len(succeeded) == 1
    assert interrupted_total > 0, "the kills cut running attempts (otherwise this test proved nothing)"


@pytest.mark.slow
async def test_redis_restart_during_load_loses_nothing(database_url: str, tmp_path: Path) -> None:
    sink = tmp_path / "sink.csv"
    cluster = Cluster(database_url, tmp_path, workers=2)
    cluster.start()
    accepted: set[str] = set()
    try:
        await create_counting_action(cluster.api.target, sink, sleep=0.02)
        accepted |= await publish(cluster.api.target, 0, 1000, batch=250)

        async def some_ran() -> bool:
            return sink.exists() and len(sink_lines(sink)) >= 200

        await wait_for(some_ran, within=120)
        await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "shutdown", "nosave"], timeout=30)
        try:
            # accepted while Redis is down: stored, enqueued later by the outbox
            accepted |= await publish(cluster.api.target, 1000, 500, batch=250)
            await asyncio.sleep(2)
        finally:
            await asyncio.to_thread(subprocess.run, REDIS_START, check=True, timeout=30)
        accepted |= await publish(cluster.api.target, 1500, 500, batch=250)
        assert len(accepted) == 2000

        async def all_final() -> bool:
            counts = await status_counts(database_url)
            return sum(counts.values()) == 2000 and counts.get("succeeded", 0) == 2000

        await wait_for(all_final, within=240, every=0.5)
    finally:
        cluster.stop()

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, event_id FROM admin.executions")
    finally:
        await conn.close()
    assert collections.Counter(str(r["event_id"]) for r in rows) == dict.fromkeys(accepted, 1)
    assert {line[0] for line in sink_lines(sink)} == {str(r["id"]) for r in rows}, "every execution ran"
