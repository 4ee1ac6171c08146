"""``neoactions audit list``: the tenant's audit log (admin keys only)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli._times import parse_moment
from neoactions.domain.audit import AuditEntry

app = typer.Typer(help="The audit log: who changed which configuration, when (admin only).", no_args_is_help=True)


def _change_text(entry: AuditEntry, limit: int = 80) -> str:
    text = json.dumps(entry.change, separators=(",", ":"), ensure_ascii=False, sort_keys=True) if entry.change else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_table(entries: Iterable[AuditEntry]) -> None:
    """One line per entry: the change is cut to what the terminal leaves, if it leaves 10 columns
    (``--json`` has it whole), a key's id to its start (``--principal`` takes the whole id:
    ``--json`` or ``keys list`` shows it)."""
    cells = []
    for e in entries:
        key = e.principal if len(e.principal) <= 9 else e.principal[:8] + "…"
        who = f"{e.principal_name} ({key})" if e.principal_name else key
        cells.append([_render.when(e.at), e.kind, e.target, who, e.request_id, _change_text(e)])
    headers = ["TIME", "KIND", "TARGET", "WHO", "REQUEST", "CHANGE"]
    shown = [i for i in range(len(headers)) if i != 4 or any(row[4] for row in cells)]  # REQUEST if any
    widths = [max([len(headers[i])] + [len(row[i]) for row in cells]) for i in shown[:-1]]
    console = _render.out()
    table = Table(box=None, header_style="bold", pad_edge=False)
    for i in shown[:-1]:
        table.add_column(headers[i], no_wrap=headers[i] != "TARGET", overflow="fold")
    # the change gets what the other columns leave (rich would shrink them all alike), if anything
    room = console.width - sum(widths) - 2 * len(widths)
    if room >= 10:
        table.add_column("CHANGE", no_wrap=True, overflow="ellipsis", max_width=room)
    else:
        shown = shown[:-1]
    for row in cells:
        table.add_row(*(escape(row[i]) for i in shown))
    console.print(table)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Option(help="A kind (action.create) or a prefix of whole words (action = every action.*).")
    ] = "",
    principal: Annotated[str, typer.Option(help="Only changes made by this API key id.")] = "",
    target: Annotated[str, typer.Option(help="Only changes to this object (an action's name, a key's id...).")] = "",
    since: Annotated[
        str | None, typer.Option(help="Only changes since: a duration ago (30m, 1h, 2d) or an ISO time.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only changes before: a duration ago or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0 = all).")] = 50,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Configuration changes of the tenant, newest first."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    start, end = parse_moment(since, "--since"), parse_moment(until, "--until")
    entries: list[AuditEntry] = []
    token = ""
    with state.client() as client:
        while True:
            page = client.list_audit_entries(
                kind=kind, principal=principal, target=target, since=start, until=end, page_token=token
            )
            entries.extend(page.items)
            token = page.next_page_token
            if not token or (limit and len(entries) >= limit):
                break
    if limit:
        entries = entries[:limit]
    if state.json:
        _render.emit_json(entries)
    elif entries:
        audit_table(entries)
    else:
        _render.out().print("no audit entries match")


__all__ = ["app", "audit_table"]
