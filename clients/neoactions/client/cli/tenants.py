"""``neoactions tenants create|list|delete``."""

from __future__ import annotations

from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt

app = typer.Typer(help="Manage tenants (admin only).", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    slug: Annotated[
        str, typer.Argument(help="a lowercase letter, then up to 40 lowercase letters, digits or _", show_default=False)
    ],
    display_name: Annotated[str, typer.Option(help="A human name.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Create a tenant."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        tenant = client.create_tenant(slug, display_name)
    if state.json:
        _render.emit_json(tenant)
    else:
        _render.out().print(f"tenant {tenant.slug} created")


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Every tenant."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        tenants = list(client.iter_tenants())
    if state.json:
        _render.emit_json(tenants)
    else:
        _render.tenants_table(tenants)


@app.command()
def delete(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(metavar="TENANT", help="The tenant to remove.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Remove a tenant with all its actions, events, executions, secrets and keys."""
    state = CliState.of(ctx, json=json_)
    if not yes and not state.json:
        typer.confirm(f"delete tenant {slug} and everything it holds?", abort=True)
    with state.client() as client:
        client.delete_tenant(slug)
    if state.json:
        _render.emit_json({"deleted": slug})
    else:
        _render.out().print(f"tenant {slug} deleted")


__all__ = ["app"]
