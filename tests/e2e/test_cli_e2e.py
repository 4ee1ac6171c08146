"""The ``neoactions`` CLI against a real server (embedded store), through typer's CliRunner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from neoactions.client.cli import app
from tests.e2e.conftest import ServerProcess

NEOACTIONS = str(Path(sys.executable).parent / "neoactions")

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

    def json_failing(self, *args: str) -> Any:
        """The JSON of a command that exits 1 (an execution that did not succeed)."""
        result = self(*args, "--json")
        assert result.exit_code == 1, result.output
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
    assert f"is `neoactions serve` running at 127.0.0.1:{port}?" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_global_options_after_the_command(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACTIONS)
    runner = cli.runner
    applied = runner.invoke(app, ["apply", "-f", str(tmp_path / "a.yaml"), "--server", cli.target, "-t", cli.tenant])
    assert applied.exit_code == 0, applied.output
    listed = runner.invoke(app, ["actions", "list", "--server", cli.target, "--tenant", cli.tenant, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [a["name"] for a in json.loads(listed.stdout)] == ["big-order-alert"]
    executions = runner.invoke(app, ["executions", "list", "--json", "--server", cli.target, "--tenant", cli.tenant])
    assert executions.exit_code == 0 and json.loads(executions.stdout) == []


TWO_ACTIONS = """
actions:
  - name: first-fine
    trigger: {event_types: ["orders.created"]}
    handler: {type: python, config: {function: "shop.handlers:alert"}}
  - name: second-broken
    trigger: {event_types: ["orders.created"]}
    handler: {type: python, config: {function: "shop.handlers:no_such_function"}}
"""


def test_apply_is_all_or_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_ACTIONS)
    refused = cli("apply", "-f", str(path))
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: UNKNOWN_HANDLER_FUNCTION: nothing applied: action 'second-broken': ")
    assert "actions[1].handler.config.function" in line
    assert cli.json("actions", "list") == []  # the valid first action was not saved either

    as_json = cli("apply", "-f", str(path), "--json")
    error = json.loads(as_json.stderr)["error"]
    assert [v["field"] for v in error["violations"]] == ["actions[1].handler.config.function"]

    path.write_text(TWO_ACTIONS.replace("no_such_function", "alert"))
    assert [r["outcome"] for r in cli.json("apply", "-f", str(path))] == ["created", "created"]


def test_execute_timeout_stops_the_execution(cli: Cli, tmp_path: Path) -> None:
    slow = ACTIONS.replace('"shop.handlers:alert"', '"shop.handlers:quick", sleep: 30').replace(
        "timeout_seconds: 10", "timeout_seconds: 60"
    )
    (tmp_path / "slow.yaml").write_text(slow)
    assert cli("apply", "-f", str(tmp_path / "slow.yaml")).exit_code == 0

    stored = cli("execute", "big-order-alert", "--input", '{"n": 1}', "--timeout", "1", "--json")
    assert stored.exit_code == 1, stored.output
    execution = json.loads(stored.stdout)
    # the handler sleeps 30 s: only the --timeout ended it
    assert execution["status"] in ("timed_out", "cancelled"), execution
    assert execution["finished_at"]

    inline = cli.json_failing(
        "execute", "--handler-type", "python", "--config", '{"function": "shop.handlers:quick", "sleep": 30}',
        "--timeout", "1",
    )  # fmt: skip
    assert inline["status"] == "timed_out" and inline["error"]["type"] == "timeout"


def test_actions_list_filters(cli: Cli, tmp_path: Path) -> None:
    declared = """
actions:
  - name: refund-hook
    description: Tell billing about refunds
    tags: [billing]
    trigger: {event_types: ["refunds.created"]}
    handler: {type: http, config: {url: "https://billing.example.com/hook"}}
  - name: order-alert
    tags: [sales]
    trigger: {event_types: ["orders.created"]}
    handler: {type: python, config: {function: "shop.handlers:alert"}}
  - name: order-hook
    tags: [sales, billing]
    trigger: {event_types: ["orders.created"]}
    handler: {type: http, config: {url: "https://sales.example.com/hook"}}
    enabled: false
"""
    (tmp_path / "many.yaml").write_text(declared)
    assert cli("apply", "-f", str(tmp_path / "many.yaml")).exit_code == 0

    def names(*filters: str) -> list[str]:
        return [a["name"] for a in cli.json("actions", "list", *filters)]

    assert names() == ["order-alert", "order-hook", "refund-hook"]
    assert names("--type", "http") == ["order-hook", "refund-hook"]
    assert names("--enabled", "--type", "http", "--tag", "billing") == ["refund-hook"]
    assert names("--disabled") == ["order-hook"]
    assert names("--tag", "sales") == ["order-alert", "order-hook"]
    assert names("--search", "REFUNDS") == ["refund-hook"]
    assert names("--search", "order-") == ["order-alert", "order-hook"]
    assert names("--tag", "nobody") == []
    human = cli("actions", "list", "--type", "python")
    assert human.exit_code == 0 and "order-alert" in human.stdout and "refund-hook" not in human.stdout


INTERNAL = {"lease_owner", "lease_expires_at", "attempt_base", "series_started_at"}


def test_executions_json_has_one_public_shape(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACTIONS)
    assert cli("apply", "-f", str(tmp_path / "a.yaml")).exit_code == 0
    action_id = cli.json("actions", "get", "big-order-alert")["id"]
    published = cli.json("publish", "orders.created", "--data", '{"amount": 250}', "--wait")
    assert cli("execute", "big-order-alert", "--input", '{"amount": 3}').exit_code == 0

    listed = cli.json("executions", "list")
    assert len(listed) == 2
    for e in listed:
        assert not INTERNAL & set(e)
        assert e["action_id"] == action_id and e["attempt_count"] == 1
        assert len(e["attempts"]) == e["attempt_count"]  # listed executions carry their attempts
    got = cli.json("executions", "get", listed[0]["id"])
    assert not INTERNAL & set(got) and got["action_id"] == action_id
    assert len(got["attempts"]) == got["attempt_count"] == 1
    assert set(got) == set(listed[0]) and got["attempts"] == listed[0]["attempts"]
    assert not INTERNAL & set(published["executions"][0])


def _watch(target: str, tenant: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [NEOACTIONS, "executions", "watch", "--server", target, "--tenant", tenant, "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_count_ends_the_stream(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ACTIONS)
    assert cli("apply", "-f", str(tmp_path / "a.yaml")).exit_code == 0
    watcher = _watch(cli.target, cli.tenant, "--count", "3")
    try:
        deadline = time.monotonic() + 60
        # executions until the watcher, once subscribed, has seen three updates and ended by itself
        while watcher.poll() is None and time.monotonic() < deadline:
            assert cli("execute", "big-order-alert", "--input", '{"amount": 1}').exit_code == 0
        assert watcher.poll() == 0, "watch --count 3 did not end"
        lines = [json.loads(line) for line in watcher.communicate(timeout=30)[0].splitlines()]
        assert len(lines) == 3 and all(line["resume_token"] for line in lines)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()


def test_watch_until_idle_follows_a_retrying_execution_to_its_end(cli: Cli, tmp_path: Path) -> None:
    retrying = """
actions:
  - name: flaky
    trigger: {event_types: ["orders.created"]}
    handler: {type: python, config: {function: "shop.handlers:boom"}}
    execution_mode: async
    retry_policy: {max_retries: 2, backoff: fixed, initial_delay_ms: 2000, jitter: false}
"""
    (tmp_path / "r.yaml").write_text(retrying)
    assert cli("apply", "-f", str(tmp_path / "r.yaml")).exit_code == 0
    assert cli("publish", "orders.created", "--data", "{}").exit_code == 0

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        [execution] = cli.json("executions", "list")
        if execution["status"] == "scheduled":
            break
    assert execution["status"] == "scheduled", execution
    # why and when, in the table of a narrow terminal
    table = cli.runner.invoke(
        app, ["--server", cli.target, "--tenant", cli.tenant, "executions", "list"], env={"COLUMNS": "80"}
    )
    assert "scheduled" in table.stdout and "next attempt at" in table.stdout
    assert "failed: ValueError" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())

    watcher = _watch(cli.target, cli.tenant, "--until-idle")
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    [final] = cli.json("executions", "list")
    assert final["status"] in ("dead_lettered", "failed")
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds and kinds[-1] == final["status"], kinds
