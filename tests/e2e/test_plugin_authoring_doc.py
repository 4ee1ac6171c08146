"""docs/plugin-authoring.md's walk-through, run as pasted in an empty folder: init → build →
test → keygen → sign → publish to a folder registry → a server trusting the key → install →
an action using the plugin → publish → the plugin's output in the stored execution."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

DOC = ROOT / "docs" / "plugin-authoring.md"
VENV = Path(sys.prefix)


def walkthrough(text: str) -> str:
    section = text.split("\n### Walk-through", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "docs/plugin-authoring.md: no ```bash block under Walk-through"
    return block.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    script = walkthrough(DOC.read_text())
    assert "50061" in script
    script = script.replace("50061", str(_free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEOACTIONS_") and k != "PYTHONPATH"}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(COLUMNS="100", TERM="dumb")
    # each command echoed before it runs; the server stopped however the script ends
    wrapped = f"set -euo pipefail\nset -x\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"
    done = subprocess.run(["bash", "-c", wrapped], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    shown = done.stdout + done.stderr
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    assert done.returncode == 0, f"{shown}\n--- server.log ---\n{log[-3000:]}"
    assert "Traceback" not in shown, shown
    assert "2 passed, 0 failed" in done.stdout  # plugins test: the example and the skeleton's case
    assert "plugin greeter 0.1.0 installed: greeter" in done.stdout
    assert "succeeded" in done.stdout
    executions = json.loads(done.stdout[done.stdout.index("[\n") :])
    (execution,) = executions
    assert execution["status"] == "succeeded" and execution["output"] == {"name": "Ada"}
    assert execution["handler_version"] == "0.1.0"
    index = json.loads((tmp_path / "registry" / "index.json").read_text())
    assert list(index["plugins"]["greeter"]["versions"]) == ["0.1.0"]
