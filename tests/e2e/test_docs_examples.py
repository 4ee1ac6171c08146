"""The shell examples of the feature docs, run as pasted: for each doc, a server started the
way ``make run`` starts one (embedded store in ``.neoactions`` of the working folder, gRPC and
HTTP ports, nothing else set), then every ```bash / ```sh block of the doc, in order, with
bash in that folder (``.venv`` activated, a fresh terminal's environment). A block the doc
marks ``<!-- not run: why -->`` (a production command needing a remote host, a server that
runs until Ctrl-C) is skipped, and only those: every other block must exit 0, print no
traceback and no ``error:`` line, and show what it promises (``EXPECTED``)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.test_readme import VENV, _clean_env, _free_port, try_it_commands

#: the ```bash blocks of a doc that must run → (a text of the block, what its output shows)
EXPECTED: dict[str, list[tuple[str, list[str]]]] = {
    "README.md": [
        ("cat > actions.yaml", ["big-order-alert", "created", "succeeded", "order 43: 500 in us"]),
        (
            "--against-history",
            [
                "would have matched 1",
                "a replay would create",
                "1 executions created",
                "1 matching action",
                "events: 30d",
            ],
        ),
        ("application/cloudevents+json", ['"duplicate":false', '"action":"big-order-alert"']),
        ("keys create billing-service", ["publisher in tenant shop", "revoked"]),
        ("secrets set partner_token", ["secret partner_token set (version 1)", "partner_token"]),
        ("neoactions stats", ["big-order-alert", "healthy"]),
    ],
    "docs/security.md": [
        ("keys create billing-service", ['"key": "nak_', "billing-service", "revoked", "tenant shop deleted"]),
        ("audit list", ["action.create", "big-order-alert", '"kind": "action.create"', "tenant.create"]),
        ("secrets set partner_token", ["secret partner_token set (version 1)", "partner_whsec", "deleted"]),
        ("rotate-master-key", ["secret(s) re-encrypted under master key"]),
    ],
    "docs/event-store.md": [
        ("events list --type", ["completed", "orders.created", '"amount":150']),
        ("--dry-run", ["a replay would create", "executions created", '"state": "succeeded"']),
        ("--against-history", ["would have matched 1", '"matched": 1']),
        ("cat > event.json", ["1 matching action", '"specversion": "1.0"', '"id": "order-46"']),
        ("events retention", ["kept forever", "events: 30d  executions: 90d"]),
    ],
    "docs/observability.md": [
        ("neoactions stats", ["big-order-alert", "health: healthy", '"tenant": "admin"']),
    ],
    "docs/http.md": [
        ("application/cloudevents+json", ['"duplicate":false', '"action":"big-order-alert"']),
        ("ce-specversion", ['"duplicate":false', '"id":']),
    ],
    "docs/dashboard.md": [],
    "docs/workflows.md": [
        ("cat > workflow.yaml", ["order-flow", "created", "workflow", "waiting", "cancelled through the API"]),
    ],
}
#: how many shell blocks of a doc say ``<!-- not run: why -->`` (a new one is a decision to make here)
NOT_RUN = {
    "README.md": 7,
    "docs/security.md": 2,
    "docs/event-store.md": 0,
    "docs/observability.md": 1,
    "docs/http.md": 0,
    "docs/dashboard.md": 1,
    "docs/workflows.md": 0,
}
#: where ``make run`` serves HTTP, as the docs write it
DOC_HTTP = "127.0.0.1:8080"
#: a fenced block, with the ``<!-- not run: why -->`` just before it if any (no reason: it runs)
BLOCK = re.compile(r"(?:<!--\s*not run:(?P<why>.*?)-->\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
SHELL = ("bash", "sh", "shell", "console")
#: a line of an untyped block that reads as a command for the shell
COMMAND = re.compile(r"^(\$ )?(neoactions|curl|make|export|printf|head|echo) ", re.M)


@dataclass(frozen=True)
class Block:
    body: str
    skip: str  # why it is not run ("" = it runs)


def shell_blocks(text: str) -> list[Block]:
    """The doc's shell blocks in order, each with the reason of its ``<!-- not run: ... -->``."""
    blocks = []
    for m in BLOCK.finditer(text):
        if m.group("lang") in SHELL:
            blocks.append(Block(m.group("body"), (m.group("why") or "").strip()))
    return blocks


def _expected(doc: str, block: Block) -> list[str]:
    found = [texts for key, texts in EXPECTED[doc] if key in block.body]
    assert len(found) == 1, f"{doc}: {len(found)} entries of EXPECTED for the block:\n{block.body}"
    return found[0]


@pytest.mark.parametrize("doc", list(EXPECTED))
def test_blocks_are_run_or_marked(doc: str) -> None:
    """Every shell example is a ```bash block; each runs (with expectations) or says why not."""
    text = (ROOT / doc).read_text()
    for m in BLOCK.finditer(text):
        if not m.group("lang"):
            assert not COMMAND.search(m.group("body")), f"{doc}: a shell example in an untyped block:\n{m.group(0)}"
    blocks = shell_blocks(text)
    for block in blocks:
        assert not re.search(r"^\$ ", block.body, re.M), f"{doc}: a prompt in a block to paste:\n{block.body}"
        if not block.skip:
            _expected(doc, block)
    assert sum(1 for b in blocks if b.skip) == NOT_RUN[doc], f"{doc}: blocks not run: {[b.skip for b in blocks]}"
    for key, _ in EXPECTED[doc]:
        assert any(key in b.body and not b.skip for b in blocks), f"{doc}: no block to run holds {key!r}"


@dataclass
class Served:
    work: Path
    env: dict[str, str]
    http_port: int


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``make run`` in a fresh clone: its data in ``.neoactions``, gRPC and HTTP on free ports."""
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(VENV)
    home = tmp_path / "home"  # no profile of the machine's user
    home.mkdir()
    env = {**_clean_env(), "HOME": str(home), "COLUMNS": "100", "TERM": "dumb"}
    port, http_port = _free_port(), _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            *(str(VENV / "bin" / "neoactions"), "serve", "--port", str(port), "--http-port", str(http_port)),
            *("--data-dir", str(work / ".neoactions")),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=work,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the HTTP server says so last
            if "http listening on" in line:
                break
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        # the docs say: another port than 50051 → NEOACTIONS_SERVER
        yield Served(work, {**env, "NEOACTIONS_SERVER": f"127.0.0.1:{port}"}, http_port)
    finally:
        proc.kill()  # its data is thrown away: no need to wait for a graceful stop
        proc.wait()
        log.close()


def _run(served: Served, script: str) -> subprocess.CompletedProcess[str]:
    script = script.replace(DOC_HTTP, f"127.0.0.1:{served.http_port}")
    wrapped = f"source .venv/bin/activate\nset -e -o pipefail\n{script}"
    return subprocess.run(
        ["bash", "-c", wrapped], cwd=served.work, env=served.env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("doc", [d for d in EXPECTED if EXPECTED[d]])
def test_doc_examples_run_as_pasted(doc: str, served: Served) -> None:
    if doc != "README.md":  # the feature docs start where the README's "Try it" ends
        setup = [c for c in try_it_commands((ROOT / "README.md").read_text()) if not c.startswith("source ")]
        done = _run(served, "\n".join(setup[:3]))  # actions.yaml, apply, publish
        assert done.returncode == 0, done.stdout + done.stderr
    ran = 0
    for block in shell_blocks((ROOT / doc).read_text()):
        if block.skip:
            continue
        done = _run(served, block.body)
        shown = done.stdout + done.stderr
        assert done.returncode == 0, f"{doc}: exited {done.returncode}:\n{block.body}\n---\n{shown}"
        assert "Traceback" not in shown, shown
        assert not re.search(r"^error:", shown, re.M), f"{doc}:\n{block.body}\n---\n{shown}"
        for text in _expected(doc, block):
            assert text in shown, f"{doc}: did not show {text!r}:\n{block.body}\n---\n{shown}"
        ran += 1
    assert ran == len(EXPECTED[doc])
    assert os.listdir(served.work / ".neoactions")
