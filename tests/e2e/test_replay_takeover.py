"""A replay job survives its server being killed: ``kill -9`` mid-replay, start the server
again, and the job goes on from its recorded progress to the end, with exactly one execution
per matching (event, action) — on the embedded store and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from neoactions.client import AsyncClient
from tests.conftest import eventually
from tests.e2e.conftest import ServerProcess, tenant_client

EVENTS = 240
#: slow enough that the kill lands mid-replay: a page of 40 events a second, about 6 s in all
RATE = 40

ACTION = {
    "name": "big-order",
    "trigger": {"event_types": ["orders.*"], "conditions": [{"field": "data.amount", "operator": "gt", "value": 100}]},
    "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
}


def _slow_replays(store_url: str, log: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    # a short lease, so the restarted server takes the killed one's job over within seconds
    monkeypatch.setenv("NEOACTIONS_LEASE_SECONDS", "2")
    monkeypatch.setenv("NEOACTIONS_VISIBILITY_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("NEOACTIONS_REPLAY_EVENTS_PER_SECOND", str(RATE))
    proc = ServerProcess(store_url, log)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def slow_replays_server(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """Both stores."""
    yield from _slow_replays(store_url, tmp_path / "server.log", monkeypatch)


@pytest.fixture
def slow_replays_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """The embedded store only (the stop path is the same code on both)."""
    yield from _slow_replays(str(tmp_path / "data"), tmp_path / "server.log", monkeypatch)


async def test_a_replay_goes_on_after_its_server_is_killed(slow_replays_server: ServerProcess) -> None:
    server = slow_replays_server
    async with tenant_client(server.target) as client:
        tenant = client.tenant
        # stored before the action exists: only the replay creates executions
        published = await client.publish_many(
            [{"type": "orders.created", "data": {"amount": 50 + i % 4 * 50}} for i in range(EVENTS)]
        )
        matching = {p.event.id for i, p in enumerate(published) if 50 + i % 4 * 50 > 100}
        await client.create_action(ACTION)
        job = await client.replay_events(type_pattern="orders.*")
        assert job.state == "running"  # type: ignore[union-attr]
        job_id = job.id  # type: ignore[union-attr]

        async def some_progress() -> bool:
            got = await client.get_replay(job_id)
            return got.events_scanned >= RATE and got.state == "running"

        await eventually(some_progress, within=15, interval=0.1, what="a recorded page")
    server.kill()
    server.start()

    async with AsyncClient(server.target, tenant=tenant, timeout=30) as client:
        halfway = await client.get_replay(job_id)
        assert halfway.state == "running" and halfway.events_scanned < EVENTS, halfway

        async def ended() -> bool:
            return (await client.get_replay(job_id)).done

        await eventually(ended, within=40, interval=0.2, what="the replay taken over and ended")
        final = await client.get_replay(job_id)
        assert final.state == "succeeded", final
        assert final.events_scanned == EVENTS
        assert final.events_matched == len(matching)
        # a page the killed server did but had not recorded counts as already replayed
        assert final.executions_created + final.already_replayed == len(matching)
        replays = Counter([x.replay_of async for x in client.iter_executions() if x.replay_of])
        assert set(replays) == matching
        assert set(replays.values()) == {1}


async def test_a_server_stopping_gives_its_replay_to_the_next_start(slow_replays_sqlite: ServerProcess) -> None:
    server = slow_replays_sqlite
    async with tenant_client(server.target) as client:
        tenant = client.tenant
        await client.publish_many([{"type": "orders.created", "data": {"amount": 200}} for _ in range(RATE * 3)])
        await client.create_action(ACTION)
        job = await client.replay_events(type_pattern="orders.*")
        job_id = job.id  # type: ignore[union-attr]
        assert (await client.get_replay(job_id)).state == "running"
    server.restart()  # SIGTERM: the job's lease is given up, not failed
    async with AsyncClient(server.target, tenant=tenant, timeout=30) as client:

        async def ended() -> bool:
            return (await client.get_replay(job_id)).done

        await eventually(ended, within=30, interval=0.2, what="the replay ended after the restart")
        final = await client.get_replay(job_id)
        assert (final.state, final.events_scanned, final.events_matched) == ("succeeded", RATE * 3, RATE * 3)
        replays = Counter([x.replay_of async for x in client.iter_executions() if x.replay_of])
        assert len(replays) == RATE * 3 and set(replays.values()) == {1}
