"""The CLI without a server: usage errors, JSON arguments, machine output of domain objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from neoactions.client.cli import app
from neoactions.client.cli._context import json_argument
from neoactions.client.cli._render import jsonable
from neoactions.client.results import StreamedUpdate
from neoactions.server.model import (
    Action,
    ExecutionStatus,
    ExecutionUpdate,
    FieldCondition,
    HandlerSpec,
    Priority,
    Trigger,
    UpdateKind,
)

runner = CliRunner(env={"NEOACTIONS_SERVER": None, "NEOACTIONS_TENANT": None})
# Nothing listens on port 9 of a documentation address; usage errors fail before connecting.
OFFLINE = ["--server", "192.0.2.1:9"]


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "apply", "publish", "execute", "actions", "executions", "tenants"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["publish", "orders.created", "--data", "{oops"],
        ["publish", "orders.created", "--data", "[1]"],
        ["publish", "orders.created", "--metadata", '"text"'],
        ["publish", "orders.created", "--data", "@/no/such/file.json"],
        ["execute"],
        ["execute", "some-action", "--handler-type", "python"],
        ["execute", "some-action", "--config", "{}"],
        ["execute", "--handler-type", "python", "--config", "[]"],
        ["executions", "list", "--status", "exploded"],
        ["apply"],
        ["actions", "frobnicate"],
        ["serve", "--role", "janitor"],
        ["serve", "--config", "/no/such/settings.yaml"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, [*OFFLINE, *args])
    assert result.exit_code == 2, result.output


def test_json_argument(tmp_path: Path) -> None:
    assert json_argument('{"a": 1}', "--data") == {"a": 1}
    assert json_argument("[1, 2]", "--input", want_object=False) == [1, 2]
    assert json_argument(None, "--metadata") is None
    path = tmp_path / "payload.json"
    path.write_text('{"from": "file"}')
    assert json_argument(f"@{path}", "--data") == {"from": "file"}
    with pytest.raises(typer.BadParameter, match="must be a JSON object"):
        json_argument("3", "--data")


def test_jsonable_gives_actions_in_their_declarative_form() -> None:
    action = Action(
        name="a",
        trigger=Trigger(["orders.*"], [FieldCondition("data.amount", "gt", 1)]),
        handler=HandlerSpec("python", {"function": "m:f"}),
        priority=Priority.CRITICAL,
        enabled=False,
        version=3,
    )
    doc = jsonable(action)
    assert doc["priority"] == "critical" and doc["enabled"] is False and doc["version"] == 3
    assert doc["trigger"]["conditions"] == [{"field": "data.amount", "operator": "gt", "value": 1}]
    json.dumps(doc)


def test_jsonable_updates_carry_the_resume_token_not_the_bus_sequence() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    update = StreamedUpdate.of(
        ExecutionUpdate(
            tenant="admin", kind=UpdateKind.SUCCEEDED, status=ExecutionStatus.SUCCEEDED, time=when, sequence=7
        ),
        "epoch.7",
    )
    doc = jsonable(update)
    assert (doc["kind"], doc["status"], doc["resume_token"]) == ("succeeded", "succeeded", "epoch.7")
    assert doc["time"] == "2026-01-02T03:04:05+00:00"
    assert "sequence" not in doc
