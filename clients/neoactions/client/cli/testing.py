"""``neoactions test-event TYPE --data JSON [--action NAME] [--execute]``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt, json_argument
from neoactions.client.results import ActionTest


def test_event(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="The event type: orders.created", show_default=False)],
    data: Annotated[str, typer.Option("--data", "-d", help="The payload, a JSON object (or @file.json).")] = "{}",
    metadata: Annotated[str | None, typer.Option(help="Request context, a JSON object (or @file.json).")] = None,
    source: Annotated[str, typer.Option(help="Who publishes the event.")] = "",
    action: Annotated[str | None, typer.Option("--action", "-a", help="Only this action.")] = None,
    execute: Annotated[bool, typer.Option("--execute", help="Run the matched actions for real.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Explain which actions an event would trigger, and why (nothing is published)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    payload = json_argument(data, "--data")
    meta = json_argument(metadata, "--metadata")
    with state.client() as client:
        results = client.test_event(type, payload, metadata=meta, source=source, action=action, execute=execute)
    if state.json:
        _render.emit_json(results)
        return
    console = _render.out()
    if not results:
        console.print("no actions in this tenant")
    for r in results:
        console.print(_tree(r))


def _tree(r: ActionTest) -> Tree:
    mark = "[green]matched[/]" if r.matched else f"[red]not matched[/] ({escape(r.reason)})"
    tree = Tree(f"[bold]{escape(r.action)}[/] [dim]{r.priority}[/] {mark}")
    if r.error:
        tree.add(f"[red]{escape(r.error)}[/]")
    for p in r.patterns:
        tree.add(f"{'✓' if p['matched'] else '✗'} type pattern {escape(p['pattern'])}")
    for c in r.conditions:
        _condition(tree, c)
    if r.execution_id:
        tree.add(f"ran as {r.execution_id}: {r.execution_status} {escape(_render.short_json(r.output))}")
    return tree


def _condition(parent: Tree, c: dict[str, object]) -> None:
    ok = "✓" if c["matched"] else "✗"
    if "field" in c:
        seen = _render.short_json(c.get("actual")) if c.get("present") else "(absent)"
        label = f"{ok} {c['field']} {c['operator']} {_render.short_json(c.get('expected'))} — saw {seen}"
    else:
        label = f"{ok} {c['kind']} at {c['location']}"
    if c.get("error"):
        label += f" [red]{c['error']}[/]"
    node = parent.add(escape(label) if "[red]" not in label else label)
    for child in c.get("children", []):  # type: ignore[attr-defined]
        _condition(node, child)


__all__ = ["test_event"]
