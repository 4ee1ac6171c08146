"""A real server at debug level writes only JSON lines to its log, errors and tracebacks included."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from neoactions.client import Client, NotFound
from tests.conftest import eventually_sync
from tests.e2e.conftest import module_server

ACTIONS: list[dict[str, Any]] = [
    {
        "name": name,
        "trigger": {"event_types": ["orders.created"]},
        "handler": {"type": "python", "config": {"function": f"shop.handlers:{function}"}},
        "execution_mode": "sync",
        "timeout_seconds": 10,
        "retry_policy": {"max_retries": 0},
    }
    for name, function in (("alert", "alert"), ("boom", "boom"))
]


def test_debug_log_is_json_lines(tmp_path: Path) -> None:
    env = {"NEOACTIONS_LOG_LEVEL": "debug", "NEOACTIONS_PYTHON_HANDLER_MODULES": "shop"}
    with module_server("sqlite", tmp_path, env) as server:
        with Client(server.target, timeout=30) as client:
            client.apply(ACTIONS)
            for i in range(3):  # a handler that raises, data with quotes, backslashes and newlines
                client.publish("orders.created", {"amount": i, "note": 'say "hi"\nnext \\ line'}, wait=True)
            with pytest.raises(NotFound):
                client.get_action('no "such"\naction')
        server.proc.send_signal(signal.SIGUSR1)  # one line per task of the event loop
        eventually_sync(lambda: "waits at" in server.log_path.read_text(), within=10, what="the task dump in the log")
    text = server.log_path.read_text()
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"log line {number} is not JSON: {line[:300]!r}") from None
    assert len(entries) > 50 and all(isinstance(e, dict) and e.get("message") is not None for e in entries)
    assert {"DEBUG", "INFO", "WARNING"} <= {e["level"] for e in entries}
    assert any(e["logger"] == "aiosqlite" for e in entries)  # third-party debug lines (SQL with quotes)
