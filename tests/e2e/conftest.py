"""End-to-end harness: a real ``neoactions`` server process on the embedded store or on
a fresh PostgreSQL database, driven through gRPC."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import grpc
import pytest

from neoactions.client import AsyncClient, authorized_channel
from tests.conftest import FIXTURES, POSTGRES_DSN, ROOT, require_postgres

LISTENING = re.compile(r"listening on [^:]+:(\d+)")


class ServerProcess:
    """``python -m neoactions.server`` in a subprocess; restartable, killable."""

    def __init__(self, store_url: str, log_path: Path) -> None:
        self.store_url = store_url
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not running"
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env.update(
            NEOACTIONS_PORT="0",
            NEOACTIONS_SHUTDOWN_GRACE_SECONDS="2",
            PYTHONPATH=os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]),
        )
        # the fixtures' handlers are approved, unless a test chose otherwise
        env.setdefault("NEOACTIONS_PYTHON_HANDLER_MODULES", "shop")
        if self.store_url.startswith("postgresql://"):
            env["NEOACTIONS_DATABASE_URL"] = self.store_url
            # local files (plugin artifacts, environments) of this server only, never the
            # repository's .neoactions shared by every test run
            env.setdefault("NEOACTIONS_DATA_DIR", str(self.log_path.parent / f"{self.log_path.stem}-files"))
        else:
            env["NEOACTIONS_DATA_DIR"] = self.store_url
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "neoactions.server"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = LISTENING.search(line)
            if m:
                self.port = int(m.group(1))
                return
        self.proc.kill()
        raise RuntimeError(f"server did not start; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """``kill -9``: no shutdown, no drain."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


async def _create_database() -> tuple[str, str]:
    name = f"neoactions_e2e_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = POSTGRES_DSN.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@contextmanager
def module_server(store: str, base: Path, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """A server on ``store`` ("sqlite": a data dir under ``base``; "postgres": a fresh
    database, dropped after), started with ``env`` added — for a module to share."""
    database = ""
    if store == "sqlite":
        url = str(base / "data")
    else:
        require_postgres()
        database, url = asyncio.run(_create_database())
    proc = ServerProcess(url, base / "server.log")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        if database:
            asyncio.run(_drop_database(database))


@asynccontextmanager
async def tenant_client(target: str) -> AsyncIterator[AsyncClient]:
    """An async client working in a fresh tenant of its own."""
    async with AsyncClient(target, timeout=30) as admin:
        tenant = await admin.create_tenant(f"t_{uuid.uuid4().hex[:12]}")
    async with AsyncClient(target, tenant=tenant.slug, timeout=30) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each e2e test runs on the embedded store and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "data")
        return
    require_postgres()
    name, url = asyncio.run(_create_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_database(name))


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(store_url, tmp_path / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def channel(server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with authorized_channel(server.target) as ch:
        yield ch
