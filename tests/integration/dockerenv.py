"""Docker and Node.js for the container/sidecar tests: engine up, test images built, npm installed.

Import the fixtures into a test module (``from tests.integration.dockerenv import docker_images``).
The work behind them runs once per session whichever module asks first:
``scripts/build-test-images.sh`` (which runs ``scripts/docker-up.sh``) and
``npm ci`` in ``plugins/sdk-node``. Missing prerequisites skip locally and fail
under CI=true. Every container the tests cause carries the label
``dev.neoactions.test-session=<id>``; at the end of the session none may be left.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from neoactions.domain.model import utcnow
from neoactions.sandboxes.container.engine import LABELS_ENV
from neoactions.server.runners import ExecutionContext, RunnerUpdate
from tests.conftest import ROOT, require_service

ONESHOT_IMAGE = "neoactions-test/oneshot:latest"
PYTHON_SIDECAR_IMAGE = "neoactions-test/python-sidecar:latest"
SESSION_LABEL = "dev.neoactions.test-session"
SESSION_ID = uuid.uuid4().hex[:12]
NODE_SDK = ROOT / "plugins" / "sdk-node"

# set before any runner or server process exists, so every container carries it
os.environ[LABELS_ENV] = f"{SESSION_LABEL}={SESSION_ID}"


@dataclass(frozen=True)
class Prepared:
    ok: bool
    why: str = ""


@functools.cache
def _build_images() -> Prepared:
    script = ROOT / "scripts" / "build-test-images.sh"
    try:
        proc = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=1500, cwd=ROOT, check=False
        )
    except subprocess.TimeoutExpired:
        return Prepared(False, "scripts/build-test-images.sh took longer than 25 minutes")
    if proc.returncode != 0:
        return Prepared(False, f"scripts/build-test-images.sh failed:\n{proc.stderr[-3000:]}")
    return Prepared(True)


@functools.cache
def _npm_install() -> Prepared:
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        return Prepared(False, "node and npm are not installed")
    if (NODE_SDK / "node_modules" / "@grpc" / "grpc-js").is_dir():
        return Prepared(True)
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_SDK, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        return Prepared(False, f"npm ci failed:\n{proc.stderr[-3000:]}")
    return Prepared(True)


def session_containers() -> list[str]:
    """Ids of every container (any state) labelled with this test session."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={SESSION_LABEL}={SESSION_ID}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def _check_nothing_left() -> None:
    left = session_containers()
    if left:
        subprocess.run(["docker", "rm", "-f", *left], capture_output=True, check=False)
        raise AssertionError(f"{len(left)} container(s) of this test session were left behind: {left}")


@pytest.fixture(scope="session")
def docker_images() -> Iterator[dict[str, str]]:
    """The test images, built; at session end, asserts no test container is left."""
    prepared = _build_images()
    require_service("Docker", prepared.ok, prepared.why)
    yield {"oneshot": ONESHOT_IMAGE, "python_sidecar": PYTHON_SIDECAR_IMAGE}
    _check_nothing_left()


@pytest.fixture(scope="session")
def node_sdk() -> Any:
    """plugins/sdk-node with its node_modules installed (npm ci)."""
    prepared = _npm_install()
    require_service("Node.js SDK", prepared.ok, prepared.why)
    return NODE_SDK


def context(seconds: float = 10.0, **overrides: Any) -> ExecutionContext:
    values: dict[str, Any] = {
        "tenant": "acme",
        "execution_id": f"ex-{uuid.uuid4().hex[:8]}",
        "action_name": "resize",
        "action_version": 3,
        "attempt": 1,
        "idempotency_key": f"idem-{uuid.uuid4().hex[:8]}",
        "deadline": utcnow() + timedelta(seconds=seconds),
        "trace_context": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    }
    values.update(overrides)
    return ExecutionContext(**values)


async def collect(runner: Any, config: dict[str, Any], data: Any, ctx: ExecutionContext) -> list[RunnerUpdate]:
    return [u async for u in runner.execute(config, data, ctx)]
