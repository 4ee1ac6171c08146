"""What a person sees when the service cannot start, or the CLI cannot use what it reaches:
one line, ``error: ...`` with a hint, exit status 1, never a traceback."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from neoactions.client.cli import app
from tests.conftest import POSTGRES_DSN, ROOT, require_postgres
from tests.e2e.conftest import LISTENING

NEOACTIONS = str(Path(sys.executable).parent / "neoactions")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOACTIONS_")}
    env.update(NEOACTIONS_DATA_DIR=str(tmp_path / "data"), NEOACTIONS_SHUTDOWN_GRACE_SECONDS="1")
    env.update(settings)
    return env


def _fails_in_one_line(command: list[str], env: dict[str, str]) -> str:
    """Runs a server command that must not start; returns its one ``error:`` line."""
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "listening on" not in done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert "hint: " in errors[0]
    return errors[0]


def test_server_module_takes_help_and_version_and_does_not_serve() -> None:
    for flag, expected in (("--help", "usage: python -m neoactions.server"), ("--version", "neoactions ")):
        done = subprocess.run(
            [sys.executable, "-m", "neoactions.server", flag], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(expected), done.stdout
        assert "listening" not in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "neoactions.server", "--port", "1"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_port_in_use(busy_port: int, tmp_path: Path) -> None:
    line = _fails_in_one_line(
        [sys.executable, "-m", "neoactions.server"], _env(tmp_path, NEOACTIONS_PORT=str(busy_port))
    )
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{busy_port}: the port is in use (hint: ")
    line = _fails_in_one_line([NEOACTIONS, "serve", "--port", str(busy_port)], _env(tmp_path))
    assert "the port is in use" in line and "--port" in line
    assert not (tmp_path / "data").exists()  # refused before the store was opened
    # a supervised group says it once, before starting any process (the URLs are not reached)
    group = [NEOACTIONS, "serve", "--processes", "2", "--port", str(busy_port)]
    group += ["--database-url", "postgresql://nobody@127.0.0.1:1/x", "--redis-url", "redis://127.0.0.1:1/0"]
    assert "the port is in use" in _fails_in_one_line(group, _env(tmp_path))


def test_redis_unreachable(tmp_path: Path) -> None:
    url = f"redis://:secret@127.0.0.1:{_closed_port()}/0"
    line = _fails_in_one_line(
        [sys.executable, "-m", "neoactions.server"], _env(tmp_path, NEOACTIONS_PORT="0", NEOACTIONS_REDIS_URL=url)
    )
    assert line.startswith("error: cannot reach Redis at redis://127.0.0.1:")
    assert "secret" not in line and "NEOACTIONS_REDIS_URL" in line


def test_postgres_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://someone:secret@127.0.0.1:{_closed_port()}/neoactions"
    line = _fails_in_one_line(
        [sys.executable, "-m", "neoactions.server"], _env(tmp_path, NEOACTIONS_PORT="0", NEOACTIONS_DATABASE_URL=url)
    )
    assert line.startswith("error: cannot reach PostgreSQL at postgresql://127.0.0.1:")
    assert "secret" not in line and "NEOACTIONS_DATABASE_URL" in line


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def test_missing_database_is_created_when_the_role_may(tmp_path: Path) -> None:
    require_postgres()
    name = f"neoactions_created_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES_DSN.rsplit('/', 1)[0]}/{name}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neoactions.server"],
        env=_env(tmp_path, NEOACTIONS_PORT="0", NEOACTIONS_DATABASE_URL=url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # PostgreSQL without a bootstrap key file: the first admin key is printed once, first
        first = proc.stdout.readline()
        assert first.startswith("first admin API key of tenant admin (shown once"), first
        assert re.search(r"nak_[a-z0-9]{20}_[A-Za-z0-9_-]{43}$", first.strip()), first
        line = proc.stdout.readline()
        assert LISTENING.search(line), line
        assert asyncio.run(_database_exists(name))
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_missing_database_the_role_may_not_create(tmp_path: Path) -> None:
    require_postgres()
    role = f"neoactions_nocreate_{uuid.uuid4().hex[:10]}"
    name = f"neoactions_missing_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE ROLE "{role}" LOGIN NOCREATEDB'))
    try:
        base = POSTGRES_DSN.split("://", 1)[1].split("@", 1)[-1].rsplit("/", 1)[0]
        url = f"postgresql://{role}@{base}/{name}"
        line = _fails_in_one_line(
            [sys.executable, "-m", "neoactions.server"],
            _env(tmp_path, NEOACTIONS_PORT="0", NEOACTIONS_DATABASE_URL=url),
        )
        assert line.startswith(f"error: the database {name} does not exist and role {role} may not create it")
        assert "CREATE DATABASE" in line
        assert not asyncio.run(_database_exists(name))
    finally:
        asyncio.run(_admin(f'DROP ROLE IF EXISTS "{role}"'))


def test_cli_at_an_unreachable_server() -> None:
    target = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(app, ["tenants", "list", "--server", target])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: UNAVAILABLE: cannot reach the server at {target}: is `neoactions serve` running at {target}?"
        " (choose another with --server or NEOACTIONS_SERVER)"
    ]


def test_cli_at_a_worker_only_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "neoactions.server"],
        env=_env(tmp_path, NEOACTIONS_PORT="0", NEOACTIONS_ROLE="worker"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        found = LISTENING.search(proc.stdout.readline())
        assert found, "the worker did not start"
        target = f"127.0.0.1:{found.group(1)}"
        result = CliRunner().invoke(app, ["actions", "list", "--server", target])
        assert result.exit_code == 1
        [line] = result.stderr.splitlines()
        assert line.startswith(f"error: UNIMPLEMENTED: the process at {target} does not serve this API")
        assert "--role worker" in line and "Method not found" not in line
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
