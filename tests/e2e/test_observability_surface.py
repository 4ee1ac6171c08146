"""A real server with metrics on: /metrics scraped over HTTP and parsed with the Prometheus
text parser moves as executions happen; stats (client and ``neoactions stats --json``) match
what ran."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from neoactions.client import Client
from neoactions.client.cli import app
from tests.conftest import eventually_sync
from tests.e2e.conftest import ServerProcess, module_server

ACTIONS: list[dict[str, Any]] = [
    {
        "name": name,
        "trigger": {"event_types": ["orders.created"]},
        "handler": {"type": "python", "config": {"function": f"shop.handlers:{function}"}},
        "execution_mode": "sync",
        "retry_policy": {"max_retries": 0},
    }
    for name, function in (("alert", "alert"), ("boom", "boom"))
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    port = _free_port()
    env = {"NEOACTIONS_METRICS_PORT": str(port), "NEOACTIONS_METRICS_ACTION_LABELS": "true"}
    with module_server("sqlite", tmp_path_factory.mktemp("metrics"), env) as server:
        yield server, port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def test_metrics_move_and_stats_match(metered: tuple[ServerProcess, int]) -> None:
    server, port = metered
    before = scrape(port)
    assert ("neoactions_executions_in_flight", ()) in before
    with Client(server.target, timeout=30) as client:
        client.apply(ACTIONS)
        for i in range(3):
            client.publish("orders.created", {"order_id": i}, wait=True)
        after = scrape(port)
        boom = client.get_action_stats("boom")
        alert = client.get_action_stats("alert")
        overview = client.get_overview()
        health = client.get_action_health("boom")

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("neoactions_events_published_total", tenant="admin") == 3
    assert moved("neoactions_executions_total", status="succeeded", action="alert", handler_type="python") == 3
    assert moved("neoactions_executions_total", status="failed", action="boom") == 3
    assert moved("neoactions_attempt_duration_seconds_count", outcome="failed", action="boom") == 3
    assert moved("neoactions_execution_start_latency_seconds_count", handler_type="python") == 6
    assert moved("neoactions_matching_duration_seconds_count", tenant="admin") == 3
    assert total(after, "neoactions_dispatcher_workers") > 0

    assert (boom.count, boom.succeeded, boom.failed, boom.success_rate) == (3, 0, 3, 0.0)
    assert boom.last_error_type == "ValueError" and "refused this order" in boom.last_error_message
    assert (alert.count, alert.succeeded, alert.success_rate) == (3, 3, 1.0)
    assert overview.total.count == 6 and {a.action for a in overview.actions} == {"alert", "boom"}
    # three failures are too few to judge by the default thresholds (5)
    assert health.level == "healthy" and "too few" in health.reason

    runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})
    result = runner.invoke(app, ["--server", server.target, "stats", "boom", "--since", "1h", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["count"] == 3 and doc["failed"] == 3 and doc["health"]["level"] == "healthy"
    table = runner.invoke(app, ["--server", server.target, "stats"])
    assert table.exit_code == 0, table.output
    assert "boom" in table.stdout and "alert" in table.stdout and "all actions" in table.stdout
    whole = json.loads(runner.invoke(app, ["--server", server.target, "stats", "--json"]).stdout)
    assert whole["count"] == 6
    bad = runner.invoke(app, ["--server", server.target, "stats", "--since", "yesterday"])
    assert bad.exit_code != 0 and "--since" in bad.output


def test_no_metrics_port_serves_no_metrics(tmp_path: Path) -> None:
    port = _free_port()
    with module_server("sqlite", tmp_path, {}) as server, Client(server.target, timeout=30) as client:
        client.list_actions()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_failing_action_raises_an_alert_event_in_a_real_server(tmp_path: Path) -> None:
    env = {
        "NEOACTIONS_ALERTS_INTERVAL_SECONDS": "0.3",
        "NEOACTIONS_HEALTH_MIN_EXECUTIONS": "3",
    }
    with module_server("sqlite", tmp_path, env) as server, Client(server.target, timeout=30) as client:
        client.apply([ACTIONS[1]])  # boom: every execution fails
        for i in range(3):
            client.publish("orders.created", {"order_id": i}, wait=True)

        def alerts() -> list[Any]:
            return client.list_events(type_pattern="neoactions.alert.*").items

        eventually_sync(lambda: len(alerts()) == 1, within=20, what="the critical alert")
        [alert] = alerts()
        assert alert.type == "neoactions.alert.action_critical" and alert.subject == "boom"
        assert alert.data["level"] == "critical" and alert.data["failed"] == 3
        assert client.get_action_health("boom").level == "critical"


def test_a_wrong_otel_setting_stops_the_start_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEOACTIONS_", "OTEL_"))}
    env.update(NEOACTIONS_DATA_DIR=str(tmp_path / "data"), NEOACTIONS_PORT="0", OTEL_TRACES_EXPORTER="jaeger")
    done = subprocess.run(
        [sys.executable, "-m", "neoactions.server"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: observability: OTEL_TRACES_EXPORTER: unknown exporter 'jaeger' (one of otlp, console, none)"
        " (hint: see docs/observability.md)"
    ], done.stderr
