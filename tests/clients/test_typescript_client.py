"""The TypeScript client (clients/typescript) end to end: its own suite, run by node's test
runner, builds the client (``buf generate`` from proto/, then ``tsc``) and drives real
``neoactions serve`` processes on the embedded store (publish and the watched fan-out,
typed errors, dead letters, TLS, API keys). Everything it needs comes from the package's
lockfile (``npm ci``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients._node import TS_DIR, node_env, npm_ci

pytestmark = pytest.mark.slow


def test_typescript_client_suite_passes_against_a_real_server() -> None:
    npm = npm_ci()
    env = node_env()
    # the servers the suite starts come from this virtualenv
    env["NEOACTIONS_BIN"] = str(Path(sys.executable).parent / "neoactions")
    done = subprocess.run([npm, "test"], cwd=TS_DIR, env=env, capture_output=True, text=True, timeout=900)
    report = done.stdout[-12000:] + "\n" + done.stderr[-4000:]
    assert done.returncode == 0, f"npm test failed in {TS_DIR}:\n{report}"
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, report
