"""A workflow run's steps drawn as a tree (``neoactions executions get`` of a workflow run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from neoactions.client.cli._render import error_text, out, short_json
from neoactions.domain.model import Execution

STEP_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "red",
    "timed_out": "yellow",
    "waiting": "yellow",
    "running": "cyan",
    "skipped": "dim",
    "pending": "dim",
}


def _line(step: dict[str, Any]) -> str:
    status = step["status"]
    style = STEP_STYLE.get(status, "")
    name = step["step"] if step["index"] < 0 else f"[{step['index']}]"
    parts = [f"[bold]{escape(name)}[/]", f"[{style}]{status}[/]" if style else status]
    start, end = step.get("start_time"), step.get("end_time")
    if start is not None and end is not None:
        parts.append(f"{(end - start).total_seconds() * 1000:.0f} ms")
    if step.get("attempts", 0) > 1:
        parts.append(f"{step['attempts']} attempts")
    if status == "waiting" and step.get("wake_time") is not None:
        parts.append(f"until {step['wake_time'].astimezone().strftime('%Y-%m-%d %H:%M:%S')}")
    if step.get("child_execution_id"):
        parts.append(f"[dim]{step['child_execution_id']}[/]")
    if step.get("error") is not None and status in ("failed", "cancelled", "skipped"):
        parts.append(f"[red]{escape(error_text(step['error']))}[/]")
    elif step.get("output") is not None and status in ("succeeded", "timed_out"):
        parts.append(escape(short_json(step["output"], 80)))
    return " ".join(parts)


def step_tree(ex: Execution, steps: Sequence[dict[str, Any]]) -> Tree:
    """The run, its steps in the order they started, and each for_each step's items under it."""
    tree = Tree(f"[bold]{escape(ex.action_name or 'workflow')}[/] v{ex.action_version} [dim]{ex.id}[/]")
    tops = sorted(
        (s for s in steps if s["index"] < 0),
        key=lambda s: (s.get("start_time") is None, s.get("start_time") or 0, s["step"]),
    )
    for top in tops:
        branch = tree.add(_line(top))
        for item in sorted(
            (s for s in steps if s["step"] == top["step"] and s["index"] >= 0), key=lambda s: s["index"]
        ):
            branch.add(_line(item))
    return tree


def print_steps(ex: Execution, steps: Sequence[dict[str, Any]]) -> None:
    out().print(step_tree(ex, steps))


__all__ = ["print_steps", "step_tree"]
