"""``neoactions actions list|get|delete|enable|disable``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli.eventstore import backtest, backtest_output

app = typer.Typer(help="Inspect and manage actions.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The action's name.", show_default=False)]


@app.command("list")
def list_(
    ctx: typer.Context,
    enabled: Annotated[
        bool | None,
        typer.Option("--enabled/--disabled", help="Only enabled (or only disabled) actions.", show_default=False),
    ] = None,
    handler_type: Annotated[
        str, typer.Option("--type", help="Only actions of this handler type (http, python, ...).")
    ] = "",
    tag: Annotated[str, typer.Option(help="Only actions carrying this tag.")] = "",
    search: Annotated[
        str, typer.Option(help="Only actions whose name or description contains this text (any case).")
    ] = "",
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The tenant's actions, by name (every filter given must hold)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        actions = list(client.iter_actions(enabled=enabled, handler_type=handler_type, tag=tag, search=search))
    if state.json:
        _render.emit_json(actions)
    else:
        _render.actions_table(actions)


@app.command()
def get(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int, typer.Option(help="An exact version; 0 = the current one.")] = 0,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One action, in the YAML form `apply` reads."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        action = client.get_action(name, version)
    if state.json:
        _render.emit_json(action)
    else:
        _render.action_detail(action)


@app.command()
def delete(ctx: typer.Context, name: NameArg, tenant: TenantOpt = None, json_: JsonOpt = False) -> None:
    """Delete an action (its executions stay)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        client.delete_action(name)
    if state.json:
        _render.emit_json({"deleted": name})
    else:
        _render.out().print(f"action {name} deleted")


def _toggle(ctx: typer.Context, name: str, enabled: bool, tenant: str | None, json_: bool) -> None:
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        action = client.enable_action(name) if enabled else client.disable_action(name)
    if state.json:
        _render.emit_json(action)
    else:
        _render.out().print(f"action {name} {'enabled' if action.enabled else 'disabled'}")


@app.command()
def enable(ctx: typer.Context, name: NameArg, tenant: TenantOpt = None, json_: JsonOpt = False) -> None:
    """Let an action match events again."""
    _toggle(ctx, name, True, tenant, json_)


@app.command()
def disable(ctx: typer.Context, name: NameArg, tenant: TenantOpt = None, json_: JsonOpt = False) -> None:
    """Stop an action from matching events (it keeps its history)."""
    _toggle(ctx, name, False, tenant, json_)


@app.command()
def test(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Option("--file", "-f", exists=True, dir_okay=False, help="The actions to test (declarative YAML)."),
    ],
    against_history: Annotated[
        bool, typer.Option("--against-history", help="Evaluate them against the stored events (a backtest).")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="Stored events at or after: an age (24h, 7d), a date or an ISO time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Stored events before this time.")] = None,
    type_pattern: Annotated[str, typer.Option("--type", help="Only stored events of this type pattern.")] = "",
    max_events: Annotated[int, typer.Option(min=0, help="Read at most this many events (0: all).")] = 0,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """What the actions of FILE (saved or not) would have matched among the stored events."""
    if not against_history:
        raise typer.BadParameter(
            "only --against-history is supported here: test one event with test-event", param_hint="--against-history"
        )
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        report = backtest(client, file, since, until, type_pattern, max_events)
    backtest_output(report, state.json)


__all__ = ["app"]
