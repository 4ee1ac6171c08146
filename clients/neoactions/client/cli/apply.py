"""``neoactions apply -f FILE``: create or update declared actions by name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt


def apply(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Option("--file", "-f", exists=True, dir_okay=False, help="The declarative actions file (YAML)."),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate on the server and change nothing.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create or update every action of FILE by name; unchanged ones are left alone."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        results = client.apply(file, dry_run=dry_run)
    if state.json:
        _render.emit_json(results)
    else:
        _render.apply_table(results)


__all__ = ["apply"]
