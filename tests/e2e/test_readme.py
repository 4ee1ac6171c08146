"""The README's "Try it" block, run as pasted against a server started the way ``make run``
starts one (``neoactions serve --port PORT --data-dir DIR``, no other setting): every
command must end, succeed and show what the README promises."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
#: the virtual environment running the tests (``make test``: the repository's ``.venv``)
VENV = Path(sys.prefix)
LISTENING = re.compile(r"listening on [^:]+:(\d+)")
#: a command of the block (by its start) → what its output must contain
EXPECTED = {
    "source .venv/bin/activate": [],
    "cat > actions.yaml": [],
    "neoactions apply": ["big-order-alert", "created"],
    "neoactions publish": ["1 matching action", "succeeded"],
    "neoactions execute": ["started", "succeeded", "#sales-us", "order 43: 500 in us"],
    "neoactions executions list": ["big-order-alert", "succeeded", "#sales-eu"],
    "neoactions actions list": ["big-order-alert", "python"],
    "neoactions executions watch": ["no unfinished executions"],
}
#: commands whose output is a table: it must fit the 80 columns the test gives them
TABLES = ("neoactions executions list", "neoactions actions list")
WIDTH = 80


def try_it_commands(text: str) -> list[str]:
    """The commands of the first ``bash`` block under "## Try it", a here-document kept whole."""
    section = text.split("\n## Try it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, 'README.md: no ```bash block under "## Try it"'
    commands: list[str] = []
    lines = iter(block.group(1).splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            body = [line]
            for more in lines:
                body.append(more)
                if more.strip() == heredoc.group(1):
                    break
            commands.append("\n".join(body))
        else:
            commands.append(line)
    return commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """The environment of a fresh terminal: no neoactions settings, no test fixtures on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOACTIONS_") and k != "PYTHONPATH"}
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.fixture
def make_run_server(tmp_path: Path) -> Iterator[str]:
    """What ``make run PORT=... DATA_DIR=...`` runs, on a free port and a fresh data directory."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    # ``make run`` keeps its data in ``.neoactions`` of the repository's folder, where the CLI
    # of the "Try it" commands runs too (and finds the server's first admin key)
    data_dir = tmp_path / "clone" / ".neoactions"
    proc = subprocess.Popen(
        [str(VENV / "bin" / "neoactions"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=_clean_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or LISTENING.search(line):
                break
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_readme_block_parses_into_known_commands() -> None:
    commands = try_it_commands(README.read_text())
    assert commands[0] == "source .venv/bin/activate"
    assert commands[1].startswith("cat > actions.yaml <<'YAML'") and commands[1].endswith("\nYAML")
    for command in commands:
        assert any(command.startswith(p) for p in EXPECTED), f"README command without expectations: {command!r}"


def test_try_it_runs_as_pasted(make_run_server: str, tmp_path: Path) -> None:
    work = tmp_path / "clone"
    work.mkdir(exist_ok=True)
    (work / ".venv").symlink_to(VENV)  # "from the repository's folder", without writing into it
    # The README says: another port than 50051 → NEOACTIONS_SERVER; a terminal of 80 columns
    env = {**_clean_env(), "NEOACTIONS_SERVER": make_run_server, "COLUMNS": str(WIDTH), "TERM": "dumb"}
    commands = try_it_commands(README.read_text())
    activate = commands[0]
    for command in commands:
        script = command if command == activate else f"{activate}\n{command}"
        done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=120)
        shown = done.stdout + done.stderr
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{shown}"
        assert "Traceback" not in shown, shown
        expected = next(v for p, v in EXPECTED.items() if command.startswith(p))
        for text in expected:
            assert text in shown, f"{command!r} did not show {text!r}:\n{shown}"
        if command.startswith(TABLES):
            wide = [line for line in done.stdout.splitlines() if len(line) > WIDTH]
            assert not wide, f"{command!r}: lines wider than {WIDTH} columns: {wide}"
    assert (work / "actions.yaml").is_file()

    listed = subprocess.run(
        [str(VENV / "bin" / "neoactions"), "executions", "list", "--json"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    executions = json.loads(listed.stdout)
    assert sorted((e["status"], e["output"]["channel"]) for e in executions) == [
        ("succeeded", "#sales-eu"),
        ("succeeded", "#sales-us"),
    ]
