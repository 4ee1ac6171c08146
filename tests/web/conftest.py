"""A real server process serving HTTP too (``NEOACTIONS_HTTP_PORT=0``), with webhook sources."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import httpx
import pytest

from neoactions.client import AsyncClient, authorized_channel
from tests.conftest import FIXTURES, ROOT, require_postgres
from tests.e2e.conftest import ServerProcess, _create_database, _drop_database

HTTP_LISTENING = re.compile(r"neoactions http listening on [^:]+:(\d+)")
GRPC_LISTENING = re.compile(r"^neoactions listening on [^:]+:(\d+)")
#: a Standard Webhooks secret (base64 of 24 bytes) and a GitHub one
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GITHUB_SECRET = "it's a secret to everybody"


def api_key() -> str:
    """The session's admin key (exported by tests/conftest.py once API keys exist)."""
    return os.environ.get("NEOACTIONS_API_KEY", "")


def auth_headers(key: str | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key() if key is None else key}"}


class WebServerProcess(ServerProcess):
    """:class:`ServerProcess` that also serves HTTP on a free port and reads it from stdout."""

    def __init__(self, store_url: str, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(store_url, log_path)
        self.env = env
        self.http_port = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env.update(
            NEOACTIONS_PORT="0",
            NEOACTIONS_HTTP_PORT="0",
            NEOACTIONS_SHUTDOWN_GRACE_SECONDS="2",
            PYTHONPATH=os.pathsep.join([str(FIXTURES), env.get("PYTHONPATH", "")]),
        )
        env.setdefault("NEOACTIONS_PYTHON_HANDLER_MODULES", "shop")
        env.update(self.env)
        if self.store_url.startswith("postgresql://"):
            env["NEOACTIONS_DATABASE_URL"] = self.store_url
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
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (self.port and self.http_port):
            line = self.proc.stdout.readline()
            if not line:
                break
            if m := HTTP_LISTENING.search(line):
                self.http_port = int(m.group(1))
            elif m := GRPC_LISTENING.search(line):
                self.port = int(m.group(1))
        if self.port and self.http_port:
            return
        self.proc.kill()
        raise RuntimeError(f"server did not start; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")


def webhook_env(base: Path) -> dict[str, str]:
    (base / "standard.secret").write_text(STANDARD_SECRET)
    (base / "github.secret").write_text(GITHUB_SECRET)
    return {"NEOACTIONS_WEBHOOK_SOURCES": json.dumps(sources(base))}


def sources(base: Path, tenant: str = "hooks") -> dict[str, dict[str, str]]:
    return {
        "billing": {
            "tenant": tenant,
            "event_type": "billing.{event}",
            "scheme": "standard-webhooks",
            "secret_file": str(base / "standard.secret"),
        },
        "github": {
            "tenant": tenant,
            "event_type": "github.{event}",
            "scheme": "github",
            "secret_file": str(base / "github.secret"),
        },
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def web_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServerProcess]:
    """One HTTP-serving server per module and store; webhook sources deliver to tenant ``hooks``."""
    base = tmp_path_factory.mktemp("web")
    database = ""
    if request.param == "sqlite":
        url = str(base / "data")
    else:
        require_postgres()
        database, url = asyncio.run(_create_database())
    proc = WebServerProcess(url, base / "server.log", webhook_env(base))
    proc.start()
    try:
        asyncio.run(_ensure_tenant(proc.target, "hooks"))
        yield proc
    finally:
        proc.stop()
        if database:
            asyncio.run(_drop_database(database))


async def _ensure_tenant(target: str, slug: str) -> None:
    async with AsyncClient(target, timeout=30) as admin:
        await admin.create_tenant(slug)


@asynccontextmanager
async def fresh_tenant(target: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(target, timeout=30) as admin:
        tenant = await admin.create_tenant(f"w_{uuid.uuid4().hex[:12]}")
    async with AsyncClient(target, tenant=tenant.slug, timeout=30) as c:
        yield c


@asynccontextmanager
async def grpc_channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    """A raw channel whose calls carry the session's key."""
    async with authorized_channel(target) as ch:
        yield ch


@pytest.fixture
async def http(web_server: WebServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_server.http, timeout=30) as client:
        yield client
