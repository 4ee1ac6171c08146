"""A neoactions deployment of several processes for the reliability tests: one ``api``
process and N ``worker`` processes on a fresh PostgreSQL database, sharing Redis under a
key prefix of their own (removed afterwards)."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import redis

from tests.conftest import REDIS_URL, eventually
from tests.e2e.conftest import ServerProcess

#: short leases and visibility so a killed worker's work moves on within seconds
FAST = {
    "NEOACTIONS_LEASE_SECONDS": "3",
    "NEOACTIONS_VISIBILITY_TIMEOUT_SECONDS": "4",
    "NEOACTIONS_POLL_INTERVAL_SECONDS": "0.2",
    "NEOACTIONS_OUTBOX_SWEEP_SECONDS": "0.5",
    "NEOACTIONS_CONCURRENCY": "32",
}


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Cluster:
    def __init__(
        self,
        database_url: str,
        tmp: Path,
        workers: int,
        extra_env: dict[str, str] | None = None,
        flow_control: dict[str, Any] | None = None,
    ) -> None:
        self.database_url = database_url
        self.prefix = f"neoactions_test_{uuid.uuid4().hex[:10]}"
        self.env = {
            **FAST,
            "NEOACTIONS_REDIS_URL": REDIS_URL,
            "NEOACTIONS_QUEUE_PREFIX": self.prefix,
            "NEOACTIONS_PYTHON_HANDLER_MODULES": "shop",
            "NEOACTIONS_FLOW_CONTROL": json.dumps({"key_prefix": f"{self.prefix}:flow", **(flow_control or {})}),
            **(extra_env or {}),
        }
        self.api = ServerProcess(database_url, tmp / "api.log")
        self.workers = [ServerProcess(database_url, tmp / f"worker{i}.log") for i in range(workers)]

    def start_process(self, proc: ServerProcess, role: str) -> None:
        with _environ({**self.env, "NEOACTIONS_ROLE": role}):
            proc.start()

    def start(self) -> None:
        self.start_process(self.api, "api")
        for w in self.workers:
            self.start_process(w, "worker")

    def restart_worker(self, i: int) -> None:
        self.start_process(self.workers[i], "worker")

    def stop(self) -> None:
        for proc in [*self.workers, self.api]:
            proc.stop()
        r = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(r.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                r.delete(*keys)
        finally:
            r.close()


async def status_counts(database_url: str, schema: str = "admin") -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(f'SELECT status, count(*) AS n FROM "{schema}".executions GROUP BY status')
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}


async def wait_for(condition: Any, within: float, every: float = 0.25) -> None:
    """Poll the async ``condition`` until it returns true; fail after ``within`` seconds."""
    await eventually(condition, within=within, interval=every)
