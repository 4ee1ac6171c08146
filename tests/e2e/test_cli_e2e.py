"""The ``neoactions`` CLI against a real server (embedded store), through typer's CliRunner."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from neoactions.client.cli import app
from tests.e2e.conftest import ServerProcess

ACTIONS = """
actions:
  - name: big-order-alert
    trigger:
      event_types: ["orders.created"]
      conditions:
        - {field: data.amount, operator: gt, value: 100}
    handler:
      type: python
      config: {function: "shop.handlers:alert"}
    priority: high
    execution_mode: sync
    timeout_seconds: 10
"""


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli-e2e")
    proc = ServerProcess(str(base / "data"), base / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


class Cli:
    """Runs ``neoactions --server ... --tenant <fresh tenant> ARGS``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None, "COLUMNS": "200"})
        self.tenant = f"t_{uuid.uuid4().hex[:12]}"

    def __call__(self, *args: str, tenant: str | None = None) -> Result:
        return self.runner.invoke(app, ["--server", self.target, "--tenant", tenant or self.tenant, *args])

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli(sqlite_server: ServerProcess) -> Cli:
    runner = Cli(sqlite_server.target)
    created = runner("tenants", "create", runner.tenant, "--display-name", "CLI tests", tenant="admin")
    assert created.exit_code == 0, created.output
    return runner


def test_tenants_create_and_list(cli: Cli) -> None:
    slugs = [t["slug"] for t in cli.json("tenants", "list")]
    assert cli.tenant in slugs and "admin" in slugs
    human = cli("tenants", "list")
    assert human.exit_code == 0 and cli.tenant in human.stdout and "CLI tests" in human.stdout

    again = cli("tenants", "create", cli.tenant, tenant="admin")
    assert again.exit_code == 1
    assert "error: TENANT_ALREADY_EXISTS" in again.stderr


def test_apply_then_list_get_disable(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "actions.yaml"
    path.write_text(ACTIONS)
    first = cli("apply", "-f", str(path))
    assert first.exit_code == 0, first.output
    assert "big-order-alert" in first.stdout and "created" in first.stdout

    [again] = cli.json("apply", "-f", str(path))
    assert again["outcome"] == "unchanged" and again["action"]["version"] == 1

    path.write_text(ACTIONS.replace("priority: high", "priority: critical"))
    [preview] = cli.json("apply", "-f", str(path), "--dry-run")
    assert (preview["outcome"], preview["dry_run"], preview["changed"]) == ("updated", True, ["priority"])
    assert cli.json("actions", "get", "big-order-alert")["priority"] == "high"

    [listed] = cli.json("actions", "list")
    assert (listed["name"], listed["priority"], listed["enabled"]) == ("big-order-alert", "high", True)
    shown = cli("actions", "get", "big-order-alert")
    assert "execution_mode: sync" in shown.stdout and "shop.handlers:alert" in shown.stdout

    assert cli.json("actions", "disable", "big-order-alert")["enabled"] is False
    assert "disabled" in cli("actions", "disable", "big-order-alert").stdout
    assert cli("actions", "delete", "big-order-alert").exit_code == 0
    assert cli.json("actions", "list") == []


def test_publish_wait_and_executions(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACTIONS)
    assert cli("apply", "-f", str(tmp_path / "a.yaml")).exit_code == 0

    published = cli.json(
        "publish", "orders.created", "--data", '{"amount": 250, "order_id": 1}', "--correlation-id", "c-1", "--wait"
    )
    [execution] = published["executions"]
    assert execution["status"] == "succeeded" and execution["output"]["amount"] == 250
    assert published["event"]["correlation_id"] == "c-1"

    human = cli("publish", "orders.created", "--data", '{"amount": 5}')
    assert human.exit_code == 0 and "0 matching actions" in human.stdout

    listed = cli.json("executions", "list", "--correlation-id", "c-1", "--status", "succeeded")
    assert [e["id"] for e in listed] == [execution["id"]]
    got = cli.json("executions", "get", execution["id"])
    assert got["attempts"][0]["status"] == "succeeded"
    table = cli("executions", "list", "--action", "big-order-alert")
    assert execution["id"] in table.stdout


def test_execute_watch_streams_json_lines(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACTIONS)
    assert cli("apply", "-f", str(tmp_path / "a.yaml")).exit_code == 0

    streamed = cli("execute", "big-order-alert", "--input", '{"amount": 3}', "--watch", "--json")
    assert streamed.exit_code == 0, streamed.output
    lines = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert lines[-1]["kind"] == "succeeded" and lines[-1]["output"]["amount"] == 3
    assert all(line["resume_token"] for line in lines)

    human = cli("execute", "big-order-alert", "--input", '{"amount": 3}', "--watch")
    assert "started" in human.stdout and "succeeded" in human.stdout

    inline = cli.json("execute", "--handler-type", "python", "--config", '{"function": "shop.handlers:Greeter"}',
                      "--input", '{"name": "cli"}')  # fmt: skip
    assert inline["output"] == {"message": "hello cli"}

    failed = cli("execute", "--handler-type", "python", "--config", '{"function": "shop.handlers:boom"}')
    assert failed.exit_code == 1 and "refused" in failed.stdout


def test_errors_and_usage(cli: Cli, tmp_path: Path) -> None:
    missing = cli("actions", "get", "nope")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: ACTION_NOT_FOUND: ")

    as_json = cli("actions", "get", "nope", "--json")
    assert as_json.exit_code == 1
    error = json.loads(as_json.stderr)["error"]
    assert (error["code"], error["reason"]) == ("NOT_FOUND", "ACTION_NOT_FOUND")

    bad_type = cli("publish", "Not.Valid!", "--data", "{}")
    assert bad_type.exit_code == 1 and "INVALID_EVENT_TYPE" in bad_type.stderr

    path = tmp_path / "bad.yaml"
    path.write_text(ACTIONS.replace("priority: high", "priority: urgent\n    colour: red"))
    bad_file = cli("apply", "-f", str(path))
    assert bad_file.exit_code == 1
    assert "actions[0].colour" in bad_file.stderr and "actions[0].priority" in bad_file.stderr

    assert cli("publish", "orders.created", "--data", "{not json").exit_code == 2
    assert cli("publish", "orders.created", "--data", "[1, 2]").exit_code == 2
    assert cli("execute").exit_code == 2
    assert cli("apply", "-f", str(tmp_path / "absent.yaml")).exit_code == 2


def test_unreachable_server_is_an_error_not_a_traceback() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    result = Cli(f"127.0.0.1:{port}")("tenants", "list", tenant="admin")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: UNAVAILABLE: ")
