"""``neoactions stats [ACTION] [--since 1h]``: action stats and health."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from neoactions.client._stats import ActionHealth, ActionStats
from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LEVEL_STYLE = {"healthy": "green", "degraded": "yellow", "critical": "bold red"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``1h``, ``30m``, ``2d``, ``90s`` before now, or an ISO 8601 time (UTC unless it says)."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration nor a time (e.g. 1h, 30m, 2d or 2026-03-01T12:00)", param_hint="--since"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _rate(s: ActionStats) -> str:
    return f"{s.success_rate:.1%}" if s.succeeded + s.failed else "-"


def _level(level: str) -> str:
    return f"[{_LEVEL_STYLE.get(level, '')}]{level}[/]"


def _table(rows: list[ActionStats], health: dict[str, ActionHealth]) -> Table:
    table = Table(show_edge=False)
    for column in ("action", "count", "ok", "failed", "success", "avg", "p50", "p95", "p99", "per min", "health"):
        table.add_column(column, justify="left" if column in ("action", "health") else "right")
    for s in rows:
        h = health.get(s.action)
        table.add_row(
            s.action or "[bold]all actions[/]",
            str(s.count),
            str(s.succeeded),
            str(s.failed),
            _rate(s),
            _seconds(s.avg_seconds),
            _seconds(s.p50_seconds),
            _seconds(s.p95_seconds),
            _seconds(s.p99_seconds),
            f"{s.throughput * 60:.1f}",
            _level(h.level) if h is not None else "",
        )
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
    start = parse_since(since)
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
    console.print(_table(rows, healths))
    if last is not None:
        h = healths[action]
        console.print(f"health: {_level(h.level)} — {h.reason}")
        if last.last_error_type:
            console.print(
                f"last error ({_render.when(last.last_error_time)}): {last.last_error_type}: {last.last_error_message}"
            )
    elif not rows[:-1]:
        console.print("no executions ended in this window")


__all__ = ["parse_since", "stats"]
