"""Several server processes on one port (``processes`` > 1): connections spread over
them, each runs what it accepted, a dead one is started again, a signal stops them all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis

from neoactions.client import AsyncClient, authorized_channel
from tests.conftest import FIXTURES, REDIS_URL, ROOT, eventually, eventually_sync, require_postgres, require_redis
from tests.e2e.conftest import ServerProcess, _create_database, _drop_database

GROUP = re.compile(r"listening on [^:]+:(\d+) \((\d+) processes\)")
WHO = {
    "name": "who",
    "trigger": {"event_types": ["shop.who"]},
    "handler": {"type": "python", "config": {"function": "shop.handlers:whoami"}},
    "execution_mode": "sync",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> set[int]:
    """Server processes of the group (the multiprocessing resource tracker left out)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    require_postgres()
    require_redis()
    name, url = asyncio.run(_create_database())
    prefix = f"neoactions_test_{uuid.uuid4().hex[:10]}"
    port = _free_port()
    env = {
        **os.environ,
        "NEOACTIONS_DATABASE_URL": url,
        "NEOACTIONS_REDIS_URL": REDIS_URL,
        "NEOACTIONS_QUEUE_PREFIX": prefix,
        "NEOACTIONS_FLOW_CONTROL": json.dumps({"key_prefix": f"{prefix}:flow"}),
        "NEOACTIONS_PROCESSES": "2",
        "NEOACTIONS_PORT": str(port),
        "NEOACTIONS_SHUTDOWN_GRACE_SECONDS": "2",
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]),
        "NEOACTIONS_PYTHON_HANDLER_MODULES": "shop",
    }
    with (tmp_path / "server.log").open("a") as log:
        argv = [sys.executable, "-m", "neoactions.server"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = GROUP.search(line)
        assert m, f"no group line: {line!r}\n{(tmp_path / 'server.log').read_text()[-3000:]}"
        assert (int(m.group(1)), int(m.group(2))) == (port, 2)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        asyncio.run(_drop_database(name))
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()


@asynccontextmanager
async def _connections(target: str, n: int) -> AsyncIterator[list[AsyncClient]]:
    """``n`` clients, each over a connection of its own (no shared subchannel)."""
    channels = [authorized_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(n)]
    try:
        yield [AsyncClient(target, timeout=30, channel=c) for c in channels]
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def _with_who(port: int) -> str:
    """The group's target, with the ``who`` action created (the change feed tells every process)."""
    target = f"127.0.0.1:{port}"
    async with AsyncClient(target, timeout=30) as admin:
        await admin.create_action(WHO)
    return target


async def _pids_serving(target: str, connections: int = 16) -> set[int]:
    async with _connections(target, connections) as clients:
        results = await asyncio.gather(*(c.publish("shop.who", {"n": i}, wait=True) for i, c in enumerate(clients)))
    assert all(r.executions and r.executions[0].status.value == "succeeded" for r in results), results
    return {r.executions[0].output["pid"] for r in results}


async def test_processes_share_the_port_and_each_runs_what_it_accepted(
    group: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = group
    target = await _with_who(port)
    # the action is known to both processes (the change feed), and 16 connections reach both
    # (the chance that the kernel puts all 16 on one of two processes is 2**-15)
    served = await _pids_serving(target)
    assert served == _children(proc.pid)
    assert len(served) == 2


async def test_a_dead_process_is_started_again_and_a_signal_stops_them_all(
    group: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = group
    target = await _with_who(port)
    before = _children(proc.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    await eventually(
        lambda: _children(proc.pid),
        until=lambda now: victim not in now and len(now) == 2,
        within=60,
        interval=0.2,
        what=f"a replacement for process {victim}",
    )
    # the replacement serves (it may take a moment to listen)
    for _ in range(60):
        served = await _pids_serving(target)
        if served == _children(proc.pid):
            break
    assert served == _children(proc.pid) and victim not in served

    survivors = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert not _children(proc.pid)
    for pid in survivors:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_sigusr1_logs_where_every_task_waits(tmp_path: Path) -> None:
    """What the supervisor asks of a process that does not stop in time, before killing it."""
    proc = ServerProcess(str(tmp_path / "data"), tmp_path / "server.log")
    proc.start()
    try:
        os.kill(proc.pid, signal.SIGUSR1)
        log = tmp_path / "server.log"
        eventually_sync(lambda: log.read_text(), until=lambda text: "lease-heartbeat waits at" in text, within=10)
        assert proc.proc is not None and proc.proc.poll() is None  # logged, still serving
    finally:
        proc.stop()


async def test_a_watcher_sees_the_executions_of_every_process(group: tuple[subprocess.Popen[str], int]) -> None:
    _, port = group
    target = await _with_who(port)
    async with _connections(target, 1) as [watcher]:
        seen: dict[str, int] = {}
        stream = watcher.watch_executions(action="who")

        async def watch() -> None:
            async for update in stream:
                if update.kind.value == "succeeded":
                    seen[update.execution_id] = update.output["pid"]

        watching = asyncio.create_task(watch())
        await asyncio.sleep(2.5)  # every process learns that the tenant is watched (1 s refresh)
        async with _connections(target, 16) as clients:
            results = await asyncio.gather(*(c.publish("shop.who", {"n": i}, wait=True) for i, c in enumerate(clients)))
        ran = {r.executions[0].id: r.executions[0].output["pid"] for r in results}
        assert len(set(ran.values())) == 2, "the 16 connections reached both processes"
        await eventually(lambda: seen.keys() >= ran.keys(), within=10, what="the watcher saw every execution")
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    assert {k: seen.get(k) for k in ran} == ran  # every execution, from whichever process ran it
