"""``neoactions dlq list|requeue`` and ``neoactions executions cancel|retry``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli.executions import app as executions_app

app = typer.Typer(help="The dead-letter queue: executions whose retries ran out.", no_args_is_help=True)

ActionOpt = Annotated[str, typer.Option(help="Only this action's dead letters.")]
ErrorTypeOpt = Annotated[str, typer.Option(help="Only dead letters whose last error has this type.")]
SinceOpt = Annotated[datetime | None, typer.Option(help="Only executions created at or after this time.")]
UntilOpt = Annotated[datetime | None, typer.Option(help="Only executions created before this time.")]


@app.command("list")
def list_(
    ctx: typer.Context,
    action: ActionOpt = "",
    error_type: ErrorTypeOpt = "",
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many (0 = all).")] = 50,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Dead letters matching the filters, newest first."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    executions = []
    token = ""
    with state.client() as client:
        while True:
            page = client.list_dead_letters(
                action=action, error_type=error_type, start_time=since, end_time=until, page_token=token
            )
            executions.extend(page.items)
            token = page.next_page_token
            if not token or (limit and len(executions) >= limit):
                break
    if limit:
        executions = executions[:limit]
    if state.json:
        _render.emit_json(executions)
    else:
        _render.executions_table(executions)


@app.command()
def requeue(
    ctx: typer.Context,
    action: ActionOpt = "",
    error_type: ErrorTypeOpt = "",
    since: SinceOpt = None,
    until: UntilOpt = None,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Requeue every dead letter matching the filters (each starts a new attempt series)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        count = client.requeue_dead_letters(action=action, error_type=error_type, start_time=since, end_time=until)
    if state.json:
        _render.emit_json({"requeued": count})
    else:
        typer.echo(f"requeued {count} execution(s)")


@executions_app.command()
def cancel(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution id.", show_default=False)],
    reason: Annotated[str, typer.Option(help="Recorded with the cancellation.")] = "",
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Cancel an unfinished execution, wherever it runs."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.cancel_execution(execution_id, reason)
    _render.execution(execution, as_json=state.json)


@executions_app.command()
def retry(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution id.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run a failed, timed-out, cancelled or dead-lettered execution again (a new attempt series)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.retry_execution(execution_id)
    _render.execution(execution, as_json=state.json)


__all__ = ["app"]
