"""The TypeScript package's tools for the tests: node, npm, and its node_modules (``npm ci``)."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.conftest import ROOT, require_service

TS_DIR = ROOT / "clients" / "typescript"
BUF = TS_DIR / "node_modules" / ".bin" / "buf"
#: touched after ``npm ci``; newer than the lockfile = node_modules is up to date (`make` uses it too)
STAMP = TS_DIR / "node_modules" / ".installed"
MIN_NODE = 20


def require_node() -> str:
    """The ``npm`` executable; skips without Node.js 20+ and npm on a laptop, fails under CI=true."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require_service("Node.js and npm", bool(node and npm), "install Node.js 20 or newer (with npm)")
    assert node is not None and npm is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    require_service(f"Node.js {MIN_NODE}+", major >= MIN_NODE, f"found {version}")
    return npm


def _fresh() -> bool:
    if not STAMP.exists():
        return False
    built = STAMP.stat().st_mtime
    return all((TS_DIR / f).stat().st_mtime <= built for f in ("package.json", "package-lock.json"))


def npm_ci() -> str:
    """Install clients/typescript's packages from its lockfile unless they already are; returns npm."""
    npm = require_node()
    if not _fresh():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=TS_DIR, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"npm ci failed in {TS_DIR}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        STAMP.touch()
    return npm


def node_env() -> dict[str, str]:
    """The environment for npm runs: CI's own, without npm's update notice."""
    return {**os.environ, "NO_UPDATE_NOTIFIER": "1", "npm_config_update_notifier": "false"}
