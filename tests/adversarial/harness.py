"""Plumbing of the hostile-input suite: a real server, and checks that it is still up,
still answering promptly, and within its memory while something hostile happens."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from neoactions.client import authorized_channel
from tests.e2e.conftest import ServerProcess

#: what every hostile server runs with: the fixture handlers approved, nothing else
BASE_ENV = {"NEOACTIONS_PYTHON_HANDLER_MODULES": "shop"}


@contextlib.contextmanager
def start_server(tmp_path: Path, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """A ``python -m neoactions.server`` on a fresh embedded store under ``tmp_path``."""
    server = ServerProcess(str(tmp_path / "data"), tmp_path / "server.log")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**BASE_ENV, **(env or {})}.items():
            patch.setenv(key, value)
        server.start()
    try:
        yield server
    finally:
        server.stop()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def assert_running(server: ServerProcess) -> None:
    assert server.proc is not None and server.proc.poll() is None, (
        f"the server exited (code {server.proc.returncode if server.proc else '?'}); "
        f"log tail:\n{server.log_path.read_text()[-3000:]}"
    )


async def probe(channel: grpc.aio.Channel, deadline: float) -> float:
    """One health check through the server's event loop; seconds it took."""
    stub = health_pb2_grpc.HealthStub(channel)
    started = time.monotonic()
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=deadline)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return time.monotonic() - started


async def assert_alive(server: ServerProcess, within: float = 1.0) -> None:
    """The process runs and answers a call within ``within`` seconds."""
    assert_running(server)
    async with authorized_channel(server.target) as channel:
        try:
            await probe(channel, within)
        except grpc.aio.AioRpcError as exc:
            assert_running(server)
            raise AssertionError(f"the server did not answer within {within}s: {exc.code().name}") from exc


@dataclass
class Responsiveness:
    """What the background probe saw."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)


@contextlib.asynccontextmanager
async def stays_responsive(
    server: ServerProcess, within: float = 1.0, every: float = 0.1
) -> AsyncIterator[Responsiveness]:
    """Probe the server every ``every`` seconds while the block runs; on exit assert that
    every probe answered within ``within`` seconds and that the process still runs."""
    seen = Responsiveness()
    stop = asyncio.Event()

    async def loop(channel: grpc.aio.Channel) -> None:
        while not stop.is_set():
            try:
                seen.latencies.append(await probe(channel, within))
            except grpc.aio.AioRpcError as exc:
                seen.failures.append(f"{exc.code().name}: {exc.details()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async with authorized_channel(server.target) as channel:
        await probe(channel, 10.0)  # connected before the hostile part starts
        task = asyncio.create_task(loop(channel))
        try:
            yield seen
        finally:
            stop.set()
            await task
    assert_running(server)
    assert not seen.failures, f"probes failed or took longer than {within}s: {seen.failures[:5]}"
    assert seen.latencies, "no probe completed"
