"""``neoactions execute`` and ``neoactions executions list|get|watch``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt, json_argument
from neoactions.server.errors import Internal
from neoactions.server.model import ExecutionStatus

app = typer.Typer(help="Inspect and follow executions.", no_args_is_help=True)


def execute(
    ctx: typer.Context,
    action: Annotated[
        str | None, typer.Argument(help="The action to run (omit with --handler-type).", show_default=False)
    ] = None,
    input: Annotated[str, typer.Option("--input", "-i", help="The input, JSON (or @file.json).")] = "{}",
    handler_type: Annotated[
        str | None, typer.Option(help="Run an inline handler of this type instead of a stored action.")
    ] = None,
    config: Annotated[str | None, typer.Option(help="The inline handler's config, a JSON object.")] = None,
    timeout_seconds: Annotated[float, typer.Option(help="The inline handler's timeout.")] = 0.0,
    correlation_id: Annotated[str, typer.Option(help="Ties the execution to a flow.")] = "",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Stream every update as it happens.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run an action (or an inline handler) now. Exits 1 when the execution does not succeed."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    if (action is None) == (handler_type is None):
        raise typer.BadParameter("name an ACTION or give --handler-type (not both)", param_hint="ACTION")
    if config is not None and handler_type is None:
        raise typer.BadParameter("only with --handler-type", param_hint="--config")
    target: Any = action
    if handler_type is not None:
        target = {"type": handler_type, "config": json_argument(config, "--config") or {}}
    data = json_argument(input, "--input", want_object=False)
    with state.client() as client:
        execution_id = ""
        for update in client.execute(target, data, correlation_id=correlation_id, timeout_seconds=timeout_seconds):
            execution_id = update.execution_id or execution_id
            if watch:
                _render.streamed(update, as_json=state.json)
        if not execution_id:
            raise Internal("the Execute stream ended without naming its execution", reason="STREAM_ENDED")
        execution = client.get_execution(execution_id)
    if state.json and not watch:
        _render.emit_json(execution)
    elif not state.json:
        if watch:
            _render.out().print()
        _render.execution_detail(execution)
    if execution.status is not ExecutionStatus.SUCCEEDED:
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    action: Annotated[str, typer.Option(help="Only this action's executions.")] = "",
    status: Annotated[ExecutionStatus | None, typer.Option(help="Only executions in this status.")] = None,
    event: Annotated[str, typer.Option(help="Only the executions of this event id.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Only executions with this correlation id.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0 = all).")] = 50,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Executions matching the filters."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        executions = []
        for ex in client.iter_executions(action=action, status=status, event_id=event, correlation_id=correlation_id):
            executions.append(ex)
            if limit and len(executions) >= limit:
                break
    if state.json:
        _render.emit_json(executions)
    else:
        _render.executions_table(executions)


@app.command()
def get(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution id.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One execution with its attempts."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.get_execution(execution_id)
    _render.execution(execution, as_json=state.json)


@app.command()
def watch(
    ctx: typer.Context,
    action: Annotated[str, typer.Option(help="Only this action's updates.")] = "",
    event: Annotated[str, typer.Option(help="Only the fan-out of this event id.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Only updates with this correlation id.")] = "",
    execution: Annotated[str, typer.Option(help="Only this execution's updates.")] = "",
    resume_token: Annotated[str, typer.Option(help="Continue after the update that carried this token.")] = "",
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Stream updates as they happen, until interrupted (Ctrl-C)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        for update in client.watch_executions(
            action=action,
            event_id=event,
            correlation_id=correlation_id,
            execution_id=execution,
            resume_token=resume_token,
        ):
            _render.streamed(update, as_json=state.json)


__all__ = ["app", "execute"]
