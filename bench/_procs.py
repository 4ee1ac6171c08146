"""Process plumbing of the end-to-end benchmark: the server under test, CPU time from
``/proc``, fresh PostgreSQL databases, the store probes that count final executions."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import asyncpg

from neoactions.domain.keys import new_token

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_DSN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
LISTENING = re.compile(r"listening on [^:]+:(\d+)")
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "dead_lettered")
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


#: every server the benchmarks start creates its first admin key from this file, and every
#: bench client sends it: the benchmarks measure the service as it is deployed, with API keys
_KEY_DIR = Path(tempfile.mkdtemp(prefix="neoactions-bench-"))
atexit.register(shutil.rmtree, _KEY_DIR, True)
BENCH_KEY = new_token()[0]
(_KEY_DIR / "admin.key").write_text(BENCH_KEY + "\n")
os.environ.setdefault("NEOACTIONS_BOOTSTRAP_KEY_FILE", str(_KEY_DIR / "admin.key"))
os.environ.setdefault("NEOACTIONS_API_KEY", BENCH_KEY)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class Listening:
    """A subprocess that prints ``listening on HOST:PORT`` once it serves."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = list(argv), env, log
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env, cwd=ROOT
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := LISTENING.search(line):
                self.port = int(m.group(1))
                return
        self.proc.kill()
        raise RuntimeError(f"{self.argv} did not start; see {self.log}:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def server(store_url: str, log: Path, starts_file: Path, **settings: str) -> Listening:
    """``python -m neoactions.server`` on ``store_url`` with ``bench`` importable."""
    env = child_env(
        NEOACTIONS_PORT=settings.pop("port", "0"),
        NEOACTIONS_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "warning"),
        NEOACTIONS_SHUTDOWN_GRACE_SECONDS="5",
        NEOACTIONS_BENCH_STARTS=str(starts_file),
        NEOACTIONS_PYTHON_HANDLER_MODULES="bench",  # the bench handlers, approved
    )
    if store_url.startswith("postgresql://"):
        env["NEOACTIONS_DATABASE_URL"] = store_url
    else:
        env["NEOACTIONS_DATA_DIR"] = store_url
    env.update({f"NEOACTIONS_{k.upper()}": v for k, v in settings.items()})
    return Listening([sys.executable, "-m", "neoactions.server"], env, log)


async def run_json(*argv: str, **env: str) -> dict:
    """Run ``python -m ARGV`` (a bench client, ``env`` added) and return the JSON line it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(**env), cwd=ROOT
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[tuple[str, str]]:
    """A new PostgreSQL database ``(name, url)``, dropped on the way out."""
    name = f"neoactions_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield name, f"{POSTGRES_DSN.rsplit('/', 1)[0]}/{name}"
    finally:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await conn.close()


class Probe:
    """Counts final executions of the admin tenant straight from the store (cheap, read-only)."""

    async def final_count(self) -> int:
        raise NotImplementedError

    async def finish_times(self) -> tuple[float, float]:
        """``(first started_at, last finished_at)`` of the final executions, epoch seconds."""
        raise NotImplementedError

    async def backend_cpu(self) -> dict[int, float]:
        """CPU seconds per process of the database serving this store (none when in-process)."""
        return {}

    async def commits(self) -> int | None:
        """Transactions committed in the store's database so far (``None`` when unknown)."""
        return None

    async def close(self) -> None:
        pass

    async def commit_latencies(self, until: asyncio.Event, every: float = 0.005) -> list[tuple[float, float]]:
        """``(start, milliseconds)`` of one-row commits on a connection of its own, one every
        ``every`` seconds until ``until`` is set (start: ``time.time()``): what a durable commit
        costs on this disk meanwhile — publish → start waits for at least one."""
        raise NotImplementedError

    async def wait_final(self, total: int, within: float) -> int:
        deadline = time.monotonic() + within
        count = await self.final_count()
        while count < total and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            count = await self.final_count()
        return count


class SqliteProbe(Probe):
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "admin.db"
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        return self._db

    async def final_count(self) -> int:
        q = f"SELECT count(*) FROM executions WHERE status IN ({','.join('?' * len(FINAL))})"
        return int(self._conn().execute(q, FINAL).fetchone()[0])

    async def finish_times(self) -> tuple[float, float]:
        lo, hi = self._conn().execute("SELECT min(started_at), max(finished_at) FROM executions").fetchone()
        return lo / 1e6, hi / 1e6

    async def commit_latencies(self, until: asyncio.Event, every: float = 0.005) -> list[tuple[float, float]]:
        db = sqlite3.connect(self._path.parent / "commit-probe.db", check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS probe (at REAL)")

        def commit() -> tuple[float, float]:
            at, t = time.time(), time.perf_counter()
            with db:
                db.execute("INSERT INTO probe VALUES (?)", (t,))
            return at, (time.perf_counter() - t) * 1000

        out: list[tuple[float, float]] = []
        try:
            while not until.is_set():
                out.append(await asyncio.to_thread(commit))
                await asyncio.sleep(every)
        finally:
            db.close()
        return out

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()


class PostgresProbe(Probe):
    def __init__(self, url: str, database: str) -> None:
        self._url, self._database = url, database
        self._conn: asyncpg.Connection | None = None
        #: this probe's own statements (each one a transaction of the database)
        self.statements = 0

    async def _c(self) -> asyncpg.Connection:
        if self._conn is None:
            self._conn = await asyncpg.connect(self._url)
        self.statements += 1
        return self._conn

    async def final_count(self) -> int:
        c = await self._c()
        return int(await c.fetchval("SELECT count(*) FROM admin.executions WHERE status = ANY($1)", list(FINAL)))

    async def finish_times(self) -> tuple[float, float]:
        c = await self._c()
        lo, hi = await c.fetchrow("SELECT min(started_at), max(finished_at) FROM admin.executions")
        return _epoch(lo), _epoch(hi)

    async def backend_cpu(self) -> dict[int, float]:
        c = await self._c()
        pids = await c.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", self._database
        )
        return {r["pid"]: cpu_seconds(r["pid"]) for r in pids}

    async def commits(self) -> int | None:
        c = await self._c()
        await asyncio.sleep(1.2)  # backends report their statistics at most once a second
        await c.execute("SELECT pg_stat_clear_snapshot()")
        self.statements += 1
        n = await c.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", self._database)
        return int(n) - self.statements

    async def commit_latencies(self, until: asyncio.Event, every: float = 0.005) -> list[tuple[float, float]]:
        conn = await asyncpg.connect(self._url)  # its commits are not counted: it runs before
        out: list[tuple[float, float]] = []
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (at double precision)")
            while not until.is_set():
                at, t = time.time(), time.perf_counter()
                await conn.execute("INSERT INTO bench_commit_probe VALUES ($1)", t)
                out.append((at, (time.perf_counter() - t) * 1000))
                await asyncio.sleep(every)
        finally:
            await conn.close()
        return out

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _epoch(value: datetime) -> float:
    return value.timestamp()


def read_times(path: Path) -> dict[int, float]:
    """``seq time`` lines of ``path`` and of ``path.*`` (one file per process) → the first
    time seen per seq."""
    out: dict[int, float] = {}
    for file in sorted([path, *path.parent.glob(f"{path.name}.*")]):
        if file.exists():
            for line in file.read_text().splitlines():
                seq, at = line.split()
                out.setdefault(int(seq), float(at))
    return out
