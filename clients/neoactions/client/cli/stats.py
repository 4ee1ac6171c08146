"""``neoactions stats [ACTION] [--since 1h]``: action stats and health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from neoactions.client._stats import ActionHealth, ActionStats
from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli._times import parse_moment

_LEVEL_STYLE = {"healthy": "green", "degraded": "yellow", "critical": "bold red"}


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s"


def _rate(s: ActionStats) -> str:
    return f"{s.success_rate:.1%}" if s.succeeded + s.failed else "-"


def _level(level: str) -> str:
    return f"[{_LEVEL_STYLE.get(level, '')}]{level}[/]"


#: the figures a terminal narrower than this leaves out (``--json`` has them all)
_NARROW = 100
_SECONDARY = ("avg", "per min")


def _table(rows: list[ActionStats], health: dict[str, ActionHealth], width: int) -> Table:
    # the figures keep their width; the action's name folds onto more lines when the terminal is narrow
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("action", overflow="fold", min_width=10)
    columns = ("count", "ok", "failed", "success", "avg", "p50", "p95", "p99", "per min", "health")
    shown = [c for c in columns if width >= _NARROW or c not in _SECONDARY]
    for column in shown:
        table.add_column(column, justify="left" if column == "health" else "right", no_wrap=True)
    for s in rows:
        h = health.get(s.action)
        cells = {
            "count": str(s.count),
            "ok": str(s.succeeded),
            "failed": str(s.failed),
            "success": _rate(s),
            "avg": _seconds(s.avg_seconds),
            "p50": _seconds(s.p50_seconds),
            "p95": _seconds(s.p95_seconds),
            "p99": _seconds(s.p99_seconds),
            "per min": f"{s.throughput * 60:.1f}",
            "health": _level(h.level) if h is not None else "",
        }
        table.add_row(s.action or "[bold]all actions[/]", *(cells[c] for c in shown))
    return table


def stats(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="One action (default: every action of the tenant).")] = "",
    since: Annotated[
        str, typer.Option(help="The window's start: a duration before now (1h, 30m, 2d) or a time.")
    ] = "1h",
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Executions that ended since --since: count, success rate, duration percentiles,
    throughput, last error and health."""
    start = parse_moment(since or "1h", "--since") or datetime.now(UTC)
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        if action:
            one = client.get_action_stats(action, since=start)
            health = client.get_action_health(action)
            rows, healths, last = [one], {action: health}, one
        else:
            overview = client.get_overview(since=start)
            rows, healths, last = [*overview.actions, overview.total], {h.action: h for h in overview.health}, None
    if state.json:
        doc: dict[str, Any]
        if action:
            doc = {**rows[0].to_dict(), "health": healths[action].to_dict()}
        else:
            doc = {**overview.to_dict(), "count": overview.total.count}
        _render.emit_json(doc)
        return
    console = _render.out()
    console.print(_table(rows, healths, console.width))
    if last is not None:
        h = healths[action]
        console.print(f"health: {_level(h.level)} — {h.reason}")
        if last.last_error_type:
            console.print(
                f"last error ({_render.when(last.last_error_time)}): {last.last_error_type}: {last.last_error_message}"
            )
    elif not rows[:-1]:
        console.print("no executions ended in this window")


__all__ = ["stats"]
