"""``neoactions events list|get|replay|replays|retention`` and ``actions test --against-history``:
the event store from the command line."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from neoactions.client import _replay as _rp
from neoactions.client._sync import Client
from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli._times import parse_duration, parse_moment
from neoactions.client.declarative import load_file

app = typer.Typer(help="Stored events: list, get, replay, retention.", no_args_is_help=True)


SinceOpt = Annotated[
    str | None,
    typer.Option(
        help="Events at or after this time: a date (2026-12-01), an ISO time, or an age (24h, 30d).", show_default=False
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(help="Events before this time (same forms as --since).", show_default=False),
]
TypeOpt = Annotated[str, typer.Option("--type", help="An event-type pattern: orders.created, orders.*, orders.**.")]


@app.command("list")
def list_(
    ctx: typer.Context,
    type_pattern: TypeOpt = "",
    since: SinceOpt = None,
    until: UntilOpt = None,
    correlation_id: Annotated[str, typer.Option(help="Only events of this correlation id.")] = "",
    status: Annotated[str | None, typer.Option(help="pending, processing, completed or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events (newest first).")] = 50,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Stored events, newest first."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    events = []
    with state.client() as client:
        for event in client.iter_events(
            type_pattern=type_pattern,
            correlation_id=correlation_id,
            status=status,
            start_time=parse_moment(since, "--since"),
            end_time=parse_moment(until, "--until"),
        ):
            events.append(event)
            if len(events) >= limit:
                break
    if state.json:
        _render.emit_json(events)
        return
    # whole ids (to paste into ``events get``); columns no event fills are left out
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("TYPE", overflow="fold", min_width=10)
    table.add_column("TIME", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    optional = {"SOURCE": [e.source for e in events], "CORRELATION ID": [e.correlation_id for e in events]}
    optional = {name: values for name, values in optional.items() if any(values)}
    for name in optional:
        table.add_column(name, overflow="fold")
    for i, e in enumerate(events):
        extra = [escape(values[i]) for values in optional.values()]
        table.add_row(e.id, escape(e.type), _render.short_when(e.time), e.status.value, *extra)
    _render.out().print(table if events else "no events")


@app.command()
def get(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event's id.", show_default=False)],
    cloudevent: Annotated[
        bool, typer.Option("--cloudevent", help="Print it as a CloudEvents 1.0 JSON document.")
    ] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One stored event."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        if cloudevent:
            _render.emit_json(client.get_cloudevent(event_id))
            return
        event = client.get_event(event_id)
    if state.json:
        _render.emit_json(event)
        return
    console = _render.out()
    console.print(f"[bold]{escape(event.type)}[/] {event.id} ({event.status.value})")
    console.print(f"time {event.time.isoformat()}  source {escape(event.source) or '-'}")
    if event.correlation_id:
        console.print(f"correlation id {escape(event.correlation_id)}")
    console.print(f"data {escape(_render.short_json(event.data))}")
    if event.metadata:
        console.print(f"metadata {escape(_render.short_json(event.metadata))}")


@app.command()
def replay(
    ctx: typer.Context,
    type_pattern: TypeOpt = "",
    since: SinceOpt = None,
    until: UntilOpt = None,
    action: Annotated[
        list[str] | None, typer.Option("--action", "-a", help="Only to this action (repeatable).")
    ] = None,
    correlation_id: Annotated[str, typer.Option(help="Only events of this correlation id.")] = "",
    source: Annotated[str, typer.Option(help="Only events of this source.")] = "",
    status: Annotated[str | None, typer.Option(help="Only events in this status (failed, ...).")] = None,
    event_id: Annotated[list[str] | None, typer.Option("--event", help="Only this event (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count per action what would be replayed.")] = False,
    rate: Annotated[float, typer.Option(min=0, help="Events per second (0: the server's default).")] = 0.0,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start the replay and return (watch: events replays ID).")
    ] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Replay stored events to their actions: new executions linked to each event; an (event,
    action) replayed before is skipped."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    selection: dict[str, Any] = {
        "type_pattern": type_pattern,
        "since": parse_moment(since, "--since"),
        "until": parse_moment(until, "--until"),
        "correlation_id": correlation_id,
        "source": source,
        "status": status,
        "event_ids": event_id or [],
        "actions": action or [],
    }
    with state.client() as client:
        if dry_run:
            report = client.replay_events(**selection, dry_run=True)
            assert isinstance(report, _rp.DryRun)
            _dry_run(report, state.json)
            return
        # a dry run first: its count of events is the progress bar's total
        total = None if state.json or detach else client.replay_events(**selection, dry_run=True).events_scanned
        job = client.replay_events(**selection, events_per_second=rate)
        assert isinstance(job, _rp.ReplayJob)
        if not detach:
            job = _follow(client, job, total, state.json)
    if state.json:
        _render.emit_json(job)
    elif detach:
        _render.out().print(f"replay {job.id} started: neoactions events replays {job.id}")
    else:
        _job_summary(job)
    if job.state in ("failed", "cancelled"):
        raise typer.Exit(1)


@app.command()
def replays(
    ctx: typer.Context,
    replay_id: Annotated[str, typer.Argument(help="The replay's id.", show_default=False)],
    cancel: Annotated[bool, typer.Option("--cancel", help="Stop it at its next page.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A replay's progress (or cancel it)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        job = client.cancel_replay(replay_id) if cancel else client.get_replay(replay_id)
        if watch and not job.done:
            job = _follow(client, job, None, state.json)
    if state.json:
        _render.emit_json(job)
    else:
        _job_summary(job)


@app.command()
def retention(
    ctx: typer.Context,
    events: Annotated[str | None, typer.Option(help="Keep events this long (30d); 0 keeps them forever.")] = None,
    executions: Annotated[
        str | None, typer.Option(help="Keep finished executions this long (90d); 0 keeps them forever.")
    ] = None,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show the tenant's retention, or set it (admins)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        current = client.get_retention()
        if events is not None or executions is not None:
            current = client.set_retention(
                events=_keep(events, "--events") if events is not None else current.events,
                executions=_keep(executions, "--executions") if executions is not None else current.executions,
            )
    if state.json:
        _render.emit_json(
            {
                "events_seconds": int(current.events.total_seconds()) if current.events else 0,
                "executions_seconds": int(current.executions.total_seconds()) if current.executions else 0,
                "updated_at": current.updated_at,
            }
        )
        return
    _render.out().print(f"events: {_human(current.events)}  executions: {_human(current.executions)}")


def _keep(text: str, option: str) -> timedelta | None:
    return None if text.strip() in ("0", "") else parse_duration(text, option)


def _human(value: timedelta | None) -> str:
    if not value:
        return "kept forever"
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dry_run(report: _rp.DryRun, as_json: bool) -> None:
    if as_json:
        _render.emit_json(report)
        return
    console = _render.out()
    console.print(f"{report.events_scanned} events read; a replay would create:")
    table = Table("action", "events", "sample")
    for c in report.actions:
        table.add_row(escape(c.action), str(c.events), ", ".join(c.sample_event_ids[:3]))
    console.print(table if report.actions else "no action matches these events")


def _follow(client: Client, job: _rp.ReplayJob, total: int | None, as_json: bool) -> _rp.ReplayJob:
    last = job
    if as_json:
        for update in client.watch_replay(job.id):
            last = update
        return last
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[created]} created"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=_render.err(), transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task("replay", total=total, created=0)
        for update in client.watch_replay(job.id):
            last = update
            progress.update(task, completed=last.events_scanned, created=last.executions_created)
        if last.state == "succeeded":
            progress.update(task, total=last.events_scanned, completed=last.events_scanned)
    return last


def _job_summary(job: _rp.ReplayJob) -> None:
    console = _render.out()
    console.print(
        f"replay {job.id} {job.state}: {job.events_scanned} events read, {job.executions_created} executions"
        f" created, {job.already_replayed} replayed before"
    )
    if job.error:
        console.print(f"[red]{escape(job.error)}[/]")
    if job.actions:
        table = Table("action", "matched", "created")
        for name, counts in sorted(job.actions.items()):
            table.add_row(escape(name), str(counts["matched"]), str(counts["created"]))
        console.print(table)


def backtest(
    client: Client,
    file: Path,
    since: str | None,
    until: str | None,
    type_pattern: str,
    max_events: int,
) -> _rp.Backtest:
    """What ``actions test -f FILE --against-history`` asks the server."""
    documents = load_file(file)
    return client.backtest(
        documents,
        since=parse_moment(since, "--since"),
        until=parse_moment(until, "--until"),
        type_pattern=type_pattern,
        max_events=max_events,
    )


def backtest_output(report: _rp.Backtest, as_json: bool) -> None:
    if as_json:
        _render.emit_json(report)
        return
    console = _render.out()
    console.print(
        f"{report.events_scanned} stored events in {report.seconds:.3f}s"
        + (" (stopped at --max-events)" if report.truncated else "")
    )
    for r in report.results:
        console.print(
            f"[bold]{escape(r.action)}[/]: would have matched {r.matched} (its event types: {r.type_matched})"
        )
        if r.sample_event_ids:
            console.print(f"  e.g. {', '.join(r.sample_event_ids[:3])}")
        for miss in r.near_misses:
            failed = [c for c in miss.explanation.conditions if not c.get("matched")]
            why = "; ".join(_condition_text(c) for c in failed) or miss.explanation.reason
            console.print(f"  near miss {miss.event_id}: {escape(why)}")


def _condition_text(c: dict[str, Any]) -> str:
    if "field" in c:
        seen = _render.short_json(c.get("actual")) if c.get("present") else "(absent)"
        return f"{c['field']} {c.get('operator', '')} {_render.short_json(c.get('expected'))} saw {seen}"
    return f"{c.get('location', '')} ({c.get('kind', '')}) not met"


__all__ = ["app", "backtest", "backtest_output"]
