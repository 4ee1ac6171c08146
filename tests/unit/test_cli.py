"""The CLI without a server: usage errors, JSON arguments, machine output of domain objects."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import typer
from typer.testing import CliRunner

from neoactions.client._apply import refused
from neoactions.client.cli import _render, app
from neoactions.client.cli._app import installed_version
from neoactions.client.cli._context import CliState, json_argument, with_hint
from neoactions.client.cli._globals import hoist_global_options
from neoactions.client.cli._render import jsonable
from neoactions.client.results import StreamedUpdate
from neoactions.domain.errors import FieldViolation, InvalidArgument, NeoActionsError, NotFound, Unavailable
from neoactions.domain.model import (
    Action,
    Attempt,
    Execution,
    ExecutionError,
    ExecutionMode,
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


# --- global options anywhere, --version ---------------------------------------------


def _root_command() -> Any:
    import typer.main

    return typer.main.get_command(app)


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["executions", "list", "--server", "h:1"], ["--server", "h:1", "executions", "list"]),
        (["executions", "list", "--server=h:1"], ["--server=h:1", "executions", "list"]),
        (["executions", "list", "-s", "h:1", "--limit", "3"], ["-s", "h:1", "executions", "list", "--limit", "3"]),
        (["executions", "--timeout", "5", "list"], ["--timeout", "5", "executions", "list"]),
        (["execute", "a", "--timeout", "1"], ["--timeout", "1", "execute", "a"]),
        # a command's own --tenant/--json stay with it
        (["tenants", "list", "--json"], ["tenants", "list", "--json"]),
        (["actions", "get", "n", "--tenant", "t"], ["actions", "get", "n", "--tenant", "t"]),
        # option values and what follows -- are left alone
        (["publish", "a.b", "--data", "--server"], ["publish", "a.b", "--data", "--server"]),
        (["actions", "get", "--", "--server"], ["actions", "get", "--", "--server"]),
        (["--json", "actions", "list"], ["--json", "actions", "list"]),
    ],
)
def test_global_options_after_the_command_move_before_it(args: list[str], hoisted: list[str]) -> None:
    assert hoist_global_options(_root_command(), args) == hoisted


@pytest.mark.parametrize(
    "args",
    [
        ["executions", "list", "--server", "192.0.2.1:9", "--status", "exploded"],
        ["tenants", "list", "--server", "192.0.2.1:9", "--limit", "x"],
        ["actions", "list", "--server", "192.0.2.1:9", "--timeout", "0"],
        ["executions", "watch", "--server", "192.0.2.1:9", "--count", "-1"],
    ],
)
def test_global_options_after_the_command_are_parsed_as_options(args: list[str]) -> None:
    result = runner.invoke(app, args)
    # a usage error of the command itself (exit 2), not "no such option: --server"
    assert result.exit_code == 2, result.output
    assert "No such option: --server" not in result.output


@pytest.mark.parametrize("where", ["before", "after"])
def test_server_tenant_timeout_and_json_reach_the_command_wherever_they_stand(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[CliState] = []

    class Recorder:
        def __init__(self, target: str, tenant: str, timeout: float | None = None, **_: Any) -> None:
            seen.append(CliState(target, tenant, False, timeout))

        def __enter__(self) -> Recorder:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def iter_tenants(self) -> list[Any]:
            return []

        def iter_executions(self, **_: Any) -> list[Any]:
            return []

    monkeypatch.setattr("neoactions.client.cli._context.Client", Recorder)
    options = ["--server", "h:7", "--tenant", "shop", "--timeout", "3", "--json"]
    for command in (["executions", "list"], ["tenants", "list"]):
        args = [*options, *command] if where == "before" else [*command, *options]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
    assert [(s.server, s.tenant, s.timeout) for s in seen] == [("h:7", "shop", 3.0)] * 2


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"neoactions {installed_version()}"
    assert re.fullmatch(r"neoactions \d+\.\d+\.\d+\S*", result.stdout.strip())


# --- errors: one line with a hint ---------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason", "hint"),
    [
        (
            Unavailable("failed to connect to all addresses; last error: Connection refused"),
            "UNAVAILABLE",
            "is `neoactions serve` running at h:1?",
        ),
        (NeoActionsError("Method not found!", reason="UNIMPLEMENTED"), "UNIMPLEMENTED", "`serve --role worker`"),
        (Unavailable("Deadline Exceeded", reason="DEADLINE_EXCEEDED"), "DEADLINE_EXCEEDED", "within 5s"),
    ],
)
def test_connection_errors_say_what_to_check(error: NeoActionsError, reason: str, hint: str) -> None:
    explained = with_hint(error, "h:1", 5.0)
    assert explained.reason == reason and hint in explained.message
    assert "\n" not in explained.message


def test_server_errors_are_left_as_they_are() -> None:
    # a server-side Unavailable (with ErrorInfo metadata) is not a connection problem
    error = Unavailable("PostgreSQL unavailable: connection refused", metadata={"store": "postgres"})
    assert with_hint(error, "h:1", 5.0) is error
    # a missing object keeps its reason and message, and says where to look
    missing = with_hint(NotFound("action 'x' not found", reason="ACTION_NOT_FOUND"), "h:1", 5.0)
    assert isinstance(missing, NotFound) and missing.reason == "ACTION_NOT_FOUND"
    assert missing.message.startswith("action 'x' not found (hint: `neoactions actions list`")


def test_an_error_is_one_line_however_narrow_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 200
    error = InvalidArgument.field("handler.config.function", f"cannot import {long}")
    _render.error(error, as_json=False)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"error: INVALID_ARGUMENT: handler.config.function: cannot import {long}"]


# --- apply: all or nothing ----------------------------------------------------------


def test_refused_apply_names_every_failing_action_and_field() -> None:
    first = InvalidArgument.field("handler.config.function", "not approved", reason="UNKNOWN_HANDLER_FUNCTION")
    second = InvalidArgument("timeout too long", violations=[FieldViolation("timeout_seconds", "must be <= 60")])
    one = refused([(1, "billing", first)])
    assert one.reason == "UNKNOWN_HANDLER_FUNCTION"
    assert one.message == "nothing applied: action 'billing': actions[1].handler.config.function: not approved"
    both = refused([(0, "a", first), (2, "c", second)])
    assert both.reason == "INVALID_ACTIONS_FILE" and both.message.endswith("(and 1 more)")
    assert [(v.field, v.description) for v in both.violations] == [
        ("actions[0].handler.config.function", "not approved"),
        ("actions[2].timeout_seconds", "must be <= 60"),
    ]


# --- executions: public JSON, tables at 80 columns, scheduled ones ------------------


def _execution(**kw: Any) -> Execution:
    values: dict[str, Any] = {
        "id": "01a24f39-6fab-763d-afa8-ecf6577f39be",
        "tenant": "admin",
        "action_id": "01a24f39-0000-763d-afa8-ecf6577f39be",
        "action_name": "big-order-alert",
        "action_version": 1,
        "input": {"amount": 150},
        "handler_type": "python",
        "status": ExecutionStatus.SUCCEEDED,
        "output": {"alerted": True, "channel": "#sales-eu"},
        "attempt_count": 1,
        "attempts": [Attempt(1, "python", ExecutionStatus.SUCCEEDED, output={"alerted": True})],
        "lease_owner": "proc-1",
        "attempt_base": 2,
    }
    values.update(kw)
    return Execution(**values)


INTERNAL = {"lease_owner", "lease_expires_at", "attempt_base", "series_started_at"}


def test_execution_json_has_one_public_shape() -> None:
    one = jsonable(_execution())
    listed = jsonable([_execution(), _execution(attempts=[], attempt_count=0, action_id="", action_name="")])
    assert not INTERNAL & set(one) and not any(INTERNAL & set(e) for e in listed)
    assert one["action_id"] == "01a24f39-0000-763d-afa8-ecf6577f39be"
    assert [a["status"] for a in one["attempts"]] == ["succeeded"]
    # one shape in lists and alone: attempts always, as many as attempt_count says
    assert set(listed[0]) == set(listed[1]) == set(one)
    assert [len(e["attempts"]) for e in listed] == [e["attempt_count"] for e in listed] == [1, 0]
    json.dumps(listed)


def test_executions_table_fits_80_columns_and_says_why_a_retry_waits(capsys: pytest.CaptureFixture[str]) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=42)
    rows = [
        _execution(),
        _execution(
            id="01a24f3b-34d2-70d6-8bdc-208e277a1b9f",
            action_name="a-rather-long-action-name-for-a-narrow-terminal",
            status=ExecutionStatus.SCHEDULED,
            next_attempt_at=soon,
            error=ExecutionError("ValueError", "the handler refused this order"),
        ),
        _execution(status=ExecutionStatus.DEAD_LETTERED, error=ExecutionError("timeout", "too slow")),
    ]
    with patch.dict(os.environ, {"COLUMNS": "80"}):
        _render.executions_table(rows)
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split() == ["ID", "ACTION", "STATUS", "ATTEMPTS"]
    statuses = [line.split()[2] for line in lines[1::2]]
    assert statuses == ["succeeded", "scheduled", "dead_lettered"]  # never folded
    assert "next attempt at" in lines[4] and "(in 4" in lines[4] and "attempt 1 failed: ValueError" in lines[4]
    with patch.dict(os.environ, {"COLUMNS": "160"}):
        _render.executions_table(rows)
    wide = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 160 for line in wide) and len(wide) == 4
    assert "a-rather-long-action-name-for-a-narrow-terminal" in wide[2] and "next attempt at" in wide[2]


def test_scheduled_execution_detail_says_why_and_when(capsys: pytest.CaptureFixture[str]) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=90)
    with patch.dict(os.environ, {"COLUMNS": "80"}):
        _render.execution_detail(_execution(status=ExecutionStatus.SCHEDULED, next_attempt_at=soon, error=None))
    out = capsys.readouterr().out
    assert "next attempt" in out and "held back by flow control" in out
    assert "next attempt at" not in out and re.search(r"\(in (89|90)s\)", out)  # the row's label says it once
    assert all(len(line) <= 80 for line in out.splitlines())


def test_actions_table_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    action = Action(
        name="notify-the-billing-team-about-refunds",
        trigger=Trigger(["billing.refund.created", "billing.refund.updated"]),
        handler=HandlerSpec("container", {"image": "x"}),
        execution_mode=ExecutionMode.QUEUED,
    )
    with patch.dict(os.environ, {"COLUMNS": "80"}):
        _render.actions_table([action])
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "container" in lines[1] and "queued" in lines[1]


# --- new options parse --------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["actions", "list", "--enabled", "--type", "http", "--tag", "billing", "--search", "refund", "--bogus"],
        ["actions", "list", "--disabled", "--bogus"],
        ["executions", "watch", "--count", "3", "--until-idle", "--bogus"],
        ["execute", "a", "--timeout", "1", "--bogus"],
    ],
)
def test_new_options_are_known(args: list[str]) -> None:
    result = runner.invoke(app, [*OFFLINE, *args])
    assert result.exit_code == 2
    assert "No such option: --bogus" in result.output, result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["publish", "--cloudevent", "missing.json"], "cannot read missing.json"),
        (["keys", "create", "ci"], "Missing option '--role'"),
        (["no-such-command"], "No such command"),
    ],
)
def test_a_usage_error_is_one_line_with_a_hint(args: list[str], said: str) -> None:
    result = runner.invoke(app, [*OFFLINE, *args])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("error: USAGE: ") and said in line and "-h` lists what it takes)" in line


def test_help_texts_hold_no_square_brackets() -> None:
    """Help is rendered as rich markup: ``[default: x]`` in a help text vanishes from the screen."""

    def walk(command: Any, path: str) -> Iterator[tuple[str, str]]:
        for param in command.params:
            yield f"{path} {param.name}", getattr(param, "help", None) or ""
        yield path, command.help or ""
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, f"{path} {name}")

    texts = list(walk(_root_command(), "neoactions"))
    assert len(texts) > 50
    assert [(where, text) for where, text in texts if "[" in text] == []
