"""The API contract (proto/) under buf: lint clean with proto/buf.yaml's rules, no breaking
change since the baseline, and a breaking change is caught (a field removed in a copy)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients._node import BUF, node_env, npm_ci
from tests.conftest import ROOT

PROTO = ROOT / "proto"


def _buf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    npm_ci()
    return subprocess.run([str(BUF), *args], cwd=cwd, env=node_env(), capture_output=True, text=True, timeout=300)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def baseline() -> str:
    """What the contract must stay compatible with (as ``make buf-breaking``): the newest
    ``v*`` tag, else the commit that put proto/ under buf."""
    tag = _git("describe", "--tags", "--abbrev=0", "--match", "v*")
    if tag:
        return tag
    added = _git("log", "--diff-filter=A", "--format=%H", "--", "proto/buf.yaml").splitlines()
    return added[-1] if added else ""


def _proto_copy(dest: Path) -> Path:
    shutil.copytree(PROTO, dest, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
    return dest


def test_contract_is_lint_clean() -> None:
    done = _buf("lint", "proto")
    assert done.returncode == 0, (
        f"buf lint proto (rules: proto/buf.yaml, see docs/clients.md):\n{done.stdout}{done.stderr}"
    )


def test_contract_has_no_breaking_change_since_its_baseline() -> None:
    base = baseline()
    if not base:
        pytest.skip("no git history here (a shallow or exported tree): nothing to compare with")
    done = _buf("breaking", "proto", "--against", f".git#ref={base},subdir=proto")
    assert done.returncode == 0, (
        f"proto/ breaks the contract of {base} (buf breaking; FILE rules, see docs/clients.md):\n"
        f"{done.stdout}{done.stderr}"
    )


def test_a_removed_field_is_a_breaking_change(tmp_path: Path) -> None:
    base = _proto_copy(tmp_path / "base")
    changed = _proto_copy(tmp_path / "changed")
    events = changed / "neoactions" / "v1" / "events.proto"
    text = events.read_text()
    without = re.sub(r"\n\s*string correlation_id = 11;\n", "\n", text, count=1)
    assert without != text, "the test's field is gone from events.proto; pick another"
    events.write_text(without)

    unchanged = _buf("breaking", str(base), "--against", str(base))
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    broken = _buf("breaking", str(changed), "--against", str(base))
    assert broken.returncode != 0
    assert 'field "11" with name "correlation_id" on message "Event" was deleted' in broken.stdout, broken.stdout
