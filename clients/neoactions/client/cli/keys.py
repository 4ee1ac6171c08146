"""``neoactions keys create|list|revoke`` and ``neoactions login``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from neoactions.client._auth import config_path, read_config
from neoactions.client._config import DEFAULT_TARGET
from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.client.cli._times import parse_duration
from neoactions.domain.keys import ROLES, ApiKey, read_token_file

app = typer.Typer(help="API keys: create (shown once), list, revoke (admin role).", no_args_is_help=True)


def keys_table(keys: Iterable[ApiKey]) -> None:
    """Whole ids (to paste into ``keys revoke``); the tenant only when the keys are of several, the
    creation time only in a terminal of 100 columns or more (``--json`` has everything)."""
    rows = list(keys)
    console = _render.out()
    several, created = len({k.tenant for k in rows}) > 1, console.width >= 100
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("NAME", overflow="fold", min_width=10)
    if several:
        table.add_column("TENANT", overflow="fold")
    for column in ("ROLE", *(["CREATED"] if created else []), "LAST USED", "EXPIRES", "STATE"):
        table.add_column(column, no_wrap=True)
    for k in rows:
        table.add_row(
            k.id,
            escape(k.name),
            *([k.tenant] if several else []),
            k.role,
            *([_render.short_when(k.created_at)] if created else []),
            _render.short_when(k.last_used_at) if k.last_used_at else "-",
            k.expires_at.astimezone().strftime("%Y-%m-%d") if k.expires_at else "never",
            "revoked" if k.revoked_at else "active",
        )
    console.print(table)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what holds the key (e.g. billing-service).", show_default=False)],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.", show_default=False)],
    expires: Annotated[str, typer.Option(help="Lifetime, e.g. 30d, 12h (default: until revoked).")] = "",
    publish_rate: Annotated[float, typer.Option(help="Events per second this key may publish (0: no limit).")] = 0.0,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create an API key. Its token is printed once: store it now."""
    if role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not a role; one of: {', '.join(ROLES)}", param_hint="--role")
    ttl = parse_duration(expires, "--expires") if expires else None
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        key, token = client.create_api_key(name, role, expires_in=ttl, publish_rate=publish_rate)
    if state.json:
        _render.emit_json({"key": token, "api_key": key})
        return
    _render.out().print(f"API key {key.id} ({key.role} in tenant {key.tenant}) created; it is shown only this once:")
    _render.out().print(token, markup=False, highlight=False)


@app.command("list")
def list_(ctx: typer.Context, tenant: TenantOpt = None, json_: JsonOpt = False) -> None:
    """The tenant's keys (never their tokens)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        keys: list[ApiKey] = []
        token = ""
        while True:
            page = client.list_api_keys(page_token=token)
            keys += page.items
            token = page.next_page_token
            if not token:
                break
    if state.json:
        _render.emit_json(keys)
    else:
        keys_table(keys)


@app.command()
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (keys list).", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Revoke a key: every server process refuses it within a second."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        key = client.revoke_api_key(key_id)
    if state.json:
        _render.emit_json(key)
    else:
        _render.out().print(f"API key {key.id} ({escape(key.name)}) revoked")


def login(
    ctx: typer.Context,
    api_key_file: Annotated[
        Path, typer.Option(help="A file holding the API key (its first line).", show_default=False)
    ],
    server: Annotated[str, typer.Option("--server", "-s", help="The server's host:port.")] = "",
    profile: Annotated[str, typer.Option(help="The profile to write (and make current).")] = "default",
    json_: JsonOpt = False,
) -> None:
    """Save a server and its API key as a profile in your config file, used from then on."""
    try:
        token = read_token_file(api_key_file)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {api_key_file}: {exc.strerror}", param_hint="--api-key-file") from None
    if not token:
        raise typer.BadParameter(f"{api_key_file} is missing or holds no key", param_hint="--api-key-file")
    base = ctx.find_object(CliState)
    target = server or (base.server if base is not None else DEFAULT_TARGET)
    path = config_path()
    config = read_config(path)
    profiles = config.get("profiles") if isinstance(config.get("profiles"), dict) else {}
    assert isinstance(profiles, dict)
    profiles[profile] = {"server": target, "api_key": token}
    config["profiles"], config["current"] = profiles, profile
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=True)
    os.chmod(path, 0o600)
    if json_ or (base is not None and base.json):
        _render.emit_json({"profile": profile, "server": target, "config": str(path)})
    else:
        _render.out().print(f"profile {profile!r}: {target}, saved in {path}")


__all__ = ["app", "login"]
