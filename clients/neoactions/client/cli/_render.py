"""How the CLI shows things: rich tables and lines for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neoactions.client.declarative import action_to_document
from neoactions.client.results import ApplyOutcome, ApplyResult, PublishResult
from neoactions.domain.errors import NeoActionsError
from neoactions.domain.model import (
    Action,
    Execution,
    ExecutionError,
    ExecutionStatus,
    ExecutionUpdate,
    Priority,
    Tenant,
    UpdateKind,
)
from neoactions.domain.status import status_code

STATUS_STYLE = {
    ExecutionStatus.SUCCEEDED: "green",
    ExecutionStatus.FAILED: "red",
    ExecutionStatus.TIMED_OUT: "red",
    ExecutionStatus.DEAD_LETTERED: "red",
    ExecutionStatus.CANCELLED: "yellow",
    ExecutionStatus.RUNNING: "cyan",
}
KIND_STYLE = {
    UpdateKind.EVENT_ACCEPTED: "blue",
    UpdateKind.STARTED: "cyan",
    UpdateKind.LOG: "dim",
    UpdateKind.ATTEMPT_FAILED: "yellow",
    UpdateKind.RETRY_SCHEDULED: "yellow",
    UpdateKind.SUCCEEDED: "green",
    UpdateKind.FAILED: "red",
    UpdateKind.TIMED_OUT: "red",
    UpdateKind.DEAD_LETTERED: "red",
    UpdateKind.CANCELLED: "yellow",
}


def out() -> Console:
    # Made per call so a redirected sys.stdout (pipes, tests) is honoured.
    return Console(highlight=False, soft_wrap=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


# --- JSON --------------------------------------------------------------------------


#: what an execution shows in JSON, in this order (then its ``attempts``): no bookkeeping of
#: the server's (leases, attempt series)
EXECUTION_FIELDS = (
    "id",
    "tenant",
    "action_id",
    "action_name",
    "action_version",
    "handler_type",
    "handler_version",
    "event_id",
    "status",
    "input",
    "output",
    "error",
    "idempotency_key",
    "correlation_id",
    "causation_id",
    "parent_execution_id",
    "replay_of",
    "priority",
    "mode",
    "attempt_count",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "next_attempt_at",
    "inline",
)


def execution_json(ex: Execution) -> dict[str, Any]:
    """An execution's public JSON shape, the same in lists and alone: its attempts always
    (the server sends them with every execution), so ``attempts`` has ``attempt_count`` items."""
    doc = {name: jsonable(getattr(ex, name)) for name in EXECUTION_FIELDS}
    doc["attempts"] = jsonable(ex.attempts)
    return doc


def jsonable(value: Any) -> Any:
    """Domain objects as plain JSON values (actions in their declarative form plus identity)."""
    if isinstance(value, Execution):
        return execution_json(value)
    if isinstance(value, Action):
        return {
            "tenant": value.tenant,
            "id": value.id,
            "version": value.version,
            "created_at": value.created_at.isoformat(),
            "updated_at": value.updated_at.isoformat(),
            **action_to_document(value),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # ``sequence`` is the server bus's internal position; the resume token names it
        hidden = ("sequence",) if isinstance(value, ExecutionUpdate) else ()
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in hidden}
    if isinstance(value, Priority):
        return value.label
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_json_line(value: Any) -> None:
    """One line of a JSON-lines stream on stdout, flushed at once."""
    sys.stdout.write(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# --- errors ------------------------------------------------------------------------


def error(exc: NeoActionsError, *, as_json: bool) -> None:
    """``error: REASON: message`` and the field violations, on stderr."""
    if as_json:
        doc = {
            "error": {
                "code": status_code(exc).name,
                "reason": exc.reason,
                "message": exc.message,
                "violations": [{"field": v.field, "description": v.description} for v in exc.violations],
                "metadata": exc.metadata,
            }
        }
        sys.stderr.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return
    console = err()
    console.print(f"[bold red]error:[/] {escape(exc.reason)}: {escape(exc.message)}", soft_wrap=True)
    for v in exc.violations:
        if f"{v.field}: {v.description}" not in exc.message:  # only what the message does not say already
            console.print(f"  [yellow]{escape(v.field)}[/]: {escape(v.description)}", soft_wrap=True)


# --- small helpers -----------------------------------------------------------------


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def short_when(value: datetime | None) -> str:
    """``HH:MM:SS`` today, ``MM-DD HH:MM`` on other days (local time)."""
    if value is None:
        return ""
    local = value.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def due_text(ex: Execution, *, label: bool = True) -> str:
    """Why a scheduled execution waits and when its next attempt is due (plain text);
    ``label=False`` leaves out the leading "next attempt at" (a row already named so)."""
    if ex.next_attempt_at is None:
        return "waiting for a worker"
    seconds = (ex.next_attempt_at - datetime.now(ex.next_attempt_at.tzinfo)).total_seconds()
    due = f"{'next attempt at ' if label else ''}{short_when(ex.next_attempt_at)}"
    due += f" (in {seconds:.0f}s)" if seconds >= 1 else " (due now)"
    if ex.error is not None and ex.attempt_count:
        return f"{due}; attempt {ex.attempt_count} failed: {error_text(ex.error)}"
    return f"{due}; held back by flow control (rate limit, concurrency or an open breaker)"


def status_text(status: ExecutionStatus | None) -> str:
    if status is None:
        return ""
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status.value}[/]" if style else status.value


def short_json(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(e: ExecutionError | None) -> str:
    return f"{e.type}: {e.message}" if e else ""


def result_text(ex: Execution) -> str:
    if ex.status is ExecutionStatus.SCHEDULED:
        return f"[yellow]{escape(due_text(ex))}[/]"
    if ex.error is not None:
        return f"[red]{escape(error_text(ex.error))}[/]"
    return escape(short_json(ex.output))


# --- tables and lines --------------------------------------------------------------


def actions_table(actions: Iterable[Action]) -> None:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME", overflow="fold", ratio=2, min_width=10)
    for column in ("VERSION", "ENABLED", "PRIORITY", "MODE", "HANDLER"):
        table.add_column(column, no_wrap=True)
    table.add_column("EVENT TYPES", overflow="fold", ratio=3, min_width=10)
    for a in actions:
        table.add_row(
            escape(a.name),
            str(a.version),
            "yes" if a.enabled else "[yellow]no[/]",
            a.priority.label,
            a.execution_mode.value,
            escape(a.handler.type),
            escape(", ".join(a.trigger.event_types)),
        )
    out().print(table)


def action_detail(action: Action) -> None:
    console = out()
    console.print(
        f"# {escape(action.tenant)}/{escape(action.name)}  version {action.version}"
        f"  {'enabled' if action.enabled else 'disabled'}  updated {when(action.updated_at)}",
        soft_wrap=True,
    )
    console.print(escape(yaml.safe_dump(action_to_document(action), sort_keys=False, allow_unicode=True)), end="")


def apply_table(results: Sequence[ApplyResult]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("ACTION", "RESULT", "VERSION", "CHANGED"):
        table.add_column(column, overflow="fold")
    styles = {ApplyOutcome.CREATED: "green", ApplyOutcome.UPDATED: "cyan", ApplyOutcome.UNCHANGED: "dim"}
    for r in results:
        label = r.outcome.value
        if r.dry_run and r.outcome is not ApplyOutcome.UNCHANGED:
            label = f"would be {label}"
        version = "" if r.dry_run and r.outcome is not ApplyOutcome.UNCHANGED else str(r.action.version)
        table.add_row(escape(r.name), f"[{styles[r.outcome]}]{label}[/]", version, escape(", ".join(r.changed)))
    out().print(table)


#: below this many columns an execution takes two lines: the facts, then its result
WIDE_TABLE = 120


def executions_table(executions: Iterable[Execution]) -> None:
    """One row per execution when the terminal is wide; two lines each (the result below) when not."""
    rows = list(executions)
    console = out()
    if console.width >= WIDE_TABLE:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("ID", no_wrap=True)
        table.add_column("ACTION", overflow="fold", min_width=10)
        table.add_column("STATUS", no_wrap=True)
        table.add_column("ATTEMPTS", no_wrap=True, justify="right")
        table.add_column("CREATED", no_wrap=True)
        # the result gets what the other columns leave (rich would shrink them all alike)
        action_width = max([len("ACTION")] + [len(_action_label(ex)) for ex in rows])
        status_width = max([len("STATUS")] + [len(ex.status.value) for ex in rows])
        room = console.width - (36 + action_width + status_width + len("ATTEMPTS") + len("MM-DD HH:MM") + 5 * 2)
        table.add_column("RESULT", overflow="ellipsis", no_wrap=True, max_width=max(20, room))
        for ex in rows:
            table.add_row(
                ex.id,
                escape(_action_label(ex)),
                status_text(ex.status),
                str(ex.attempt_count),
                short_when(ex.created_at),
                result_text(ex),
            )
        console.print(table)
        return
    # Narrow: the facts in columns, then the result on a line of its own below them.
    facts = [(ex.id, _action_label(ex), ex.status.value, str(ex.attempt_count)) for ex in rows]
    headers = ("ID", "ACTION", "STATUS", "ATTEMPTS")
    widths = [max([len(h)] + [len(f[j]) for f in facts]) for j, h in enumerate(headers)]
    room = console.width - (widths[0] + widths[2] + widths[3] + 3 * _GAP)
    widths[1] = max(len(headers[1]), min(widths[1], room))
    gap = " " * _GAP
    console.print(
        f"[bold]{headers[0]:<{widths[0]}}{gap}{headers[1]:<{widths[1]}}{gap}{headers[2]:<{widths[2]}}{gap}"
        f"{headers[3]:>{widths[3]}}[/]",
        soft_wrap=True,
    )
    for ex, (id_, action, status, attempts) in zip(rows, facts, strict=True):
        if len(action) > widths[1]:
            action = action[: widths[1] - 1] + "…"
        status_cell = status_text(ex.status) + " " * (widths[2] - len(status))
        console.print(
            f"{id_}{gap}{escape(action):<{widths[1]}}{gap}{status_cell}{gap}{attempts:>{widths[3]}}",
            soft_wrap=True,
        )
        console.print(
            f"  [dim]{short_when(ex.created_at)}[/]  {result_text(ex)}", no_wrap=True, overflow="ellipsis", crop=True
        )


#: spaces between the columns of the narrow executions table
_GAP = 2


def _action_label(ex: Execution) -> str:
    return ex.action_name or f"(inline {ex.handler_type})"


def publish_summary(result: PublishResult) -> None:
    e = result.event
    n = len(result.executions)
    out().print(
        f"event [bold]{e.id}[/] ({escape(e.type)}) accepted; {n} matching action{'' if n == 1 else 's'}",
        soft_wrap=True,
    )
    if result.executions:
        executions_table(result.executions)


def execution_detail(ex: Execution) -> None:
    console = out()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column(overflow="fold")
    rows = [
        ("id", ex.id),
        ("tenant", escape(ex.tenant)),
        ("action", escape(f"{ex.action_name} v{ex.action_version}" if ex.action_name else "(inline)")),
        ("handler", escape(ex.handler_type)),
        ("status", status_text(ex.status)),
        ("event", ex.event_id),
        ("correlation id", escape(ex.correlation_id)),
        ("idempotency key", escape(ex.idempotency_key)),
        ("created", when(ex.created_at)),
        ("started", when(ex.started_at)),
        ("finished", when(ex.finished_at)),
        (
            "next attempt",
            f"[yellow]{escape(due_text(ex, label=False))}[/]" if ex.status is ExecutionStatus.SCHEDULED else "",
        ),
        ("input", escape(short_json(ex.input, 200))),
        ("output", escape(short_json(ex.output, 200))),
        ("error", f"[red]{escape(error_text(ex.error))}[/]" if ex.error else ""),
    ]
    for key, value in rows:
        if value:
            info.add_row(key, value)
    console.print(info)
    if ex.attempts:
        table = Table(title="attempts", box=None, header_style="bold", title_justify="left", pad_edge=False)
        for column in ("#", "RUNNER", "STATUS", "STARTED", "DURATION"):
            table.add_column(column, no_wrap=True, justify="right" if column in ("#", "DURATION") else "left")
        table.add_column("RESULT", overflow="fold")
        for a in ex.attempts:
            result = f"[red]{escape(error_text(a.error))}[/]" if a.error else escape(short_json(a.output))
            table.add_row(
                str(a.number),
                escape(a.runner),
                status_text(a.status),
                short_when(a.started_at),
                f"{a.duration_ms:.1f} ms",
                result,
            )
        console.print(table)


def execution(ex: Execution, *, as_json: bool) -> None:
    """One execution: JSON, or its detail view."""
    if as_json:
        emit_json(ex)
    else:
        execution_detail(ex)


def update_line(u: ExecutionUpdate, *, with_ids: bool = True) -> None:
    """One streamed update as one readable line; ``with_ids=False`` when every line is about
    the same execution (``execute --watch``: its id is shown at the end)."""
    style = KIND_STYLE.get(u.kind, "")
    kind = f"[{style}]{u.kind.value:<15}[/]" if style else f"{u.kind.value:<15}"
    parts = [u.time.astimezone().strftime("%H:%M:%S.%f")[:-3], kind]
    if u.action_name:
        parts.append(f"[bold]{escape(u.action_name)}[/]")
    if u.execution_id:
        if with_ids:
            parts.append(f"[dim]{u.execution_id}[/]")
    elif u.event_id:
        parts.append(f"[dim]event {u.event_id}[/]")
    if u.step:
        parts.append(f"step [bold]{escape(u.step)}[/]")
    if u.attempt:
        parts.append(f"attempt {u.attempt}")
    if u.kind is UpdateKind.PROGRESS:
        parts.append(f"{u.progress:.0%}")
    if u.message:
        parts.append(escape(u.message))
    if u.output is not None:
        parts.append(escape(short_json(u.output, 120)))
    if u.error is not None:
        parts.append(f"[red]{escape(error_text(u.error))}[/]")
    out().print("  ".join(parts), soft_wrap=True)


def streamed(u: ExecutionUpdate, *, as_json: bool, with_ids: bool = True) -> None:
    """One update of a stream: a JSON line or a readable line."""
    if as_json:
        emit_json_line(u)
    else:
        update_line(u, with_ids=with_ids)


def tenants_table(tenants: Iterable[Tenant]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("TENANT", "DISPLAY NAME", "CREATED"):
        table.add_column(column, overflow="fold")
    for t in tenants:
        table.add_row(escape(t.slug), escape(t.display_name), when(t.created_at))
    out().print(table)


__all__ = [
    "action_detail",
    "actions_table",
    "apply_table",
    "emit_json",
    "emit_json_line",
    "error",
    "execution_detail",
    "executions_table",
    "jsonable",
    "publish_summary",
    "streamed",
    "tenants_table",
    "update_line",
]
