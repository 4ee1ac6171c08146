"""``neoactions secrets set|list|delete|rotate-master-key``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.secrets import SecretInfo

app = typer.Typer(
    help="Manage a tenant's secrets (admin role): values are write-only, named in handler configs"
    " as {{ secrets.NAME }}.",
    no_args_is_help=True,
)


def _fail(state: CliState, field: str, message: str) -> None:
    _render.error(InvalidArgument.field(field, message), as_json=state.json)
    raise typer.Exit(2)


def _one_line_off(text: str) -> str:
    """The value without the one newline ``echo`` or an editor puts at its end."""
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def _read_value(state: CliState, from_file: Path | None) -> str:
    if from_file is not None:
        try:
            raw = from_file.read_bytes()
        except OSError as exc:
            _fail(state, "--from-file", f"cannot read {from_file}: {exc.strerror}")
    elif sys.stdin.isatty():
        return str(typer.prompt("value", hide_input=True, err=True))
    else:
        raw = sys.stdin.buffer.read()
    try:
        return _one_line_off(raw.decode("utf-8"))
    except UnicodeDecodeError:
        _fail(state, "value", "a secret is UTF-8 text")
        raise  # unreachable


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="a letter or _, then letters, digits or _ (up to 128)", show_default=False)
    ],
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Read the value from this file (else stdin, or a hidden prompt)."),
    ] = None,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create a secret or give it a new value, read from stdin or --from-file (never an argument).

    A value on the command line would stay in the shell history. One trailing newline is dropped."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    value = _read_value(state, from_file)
    if not value:
        _fail(state, "value", "the value is empty (pipe it in, or use --from-file)")
    with state.client() as client:
        info = client.set_secret(name, value)
    if state.json:
        _render.emit_json(info)
    else:
        _render.out().print(
            f"secret {escape(info.name)} set (version {info.version}); use it as {{{{ secrets.{escape(info.name)} }}}}"
        )


def _table(secrets: list[SecretInfo]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "VERSION", "CREATED", "UPDATED", "CREATED BY"):
        table.add_column(column, overflow="fold")
    for s in secrets:
        table.add_row(
            escape(s.name), str(s.version), _render.when(s.created_at), _render.when(s.updated_at), escape(s.created_by)
        )
    _render.out().print(table)


@app.command("list")
def list_(ctx: typer.Context, tenant: TenantOpt = None, json_: JsonOpt = False) -> None:
    """The tenant's secrets: names and metadata, never values."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        secrets = list(client.iter_secrets())
    if state.json:
        _render.emit_json(secrets)
    elif not secrets:
        _render.out().print("no secrets (set one with `neoactions secrets set NAME < value-file`)")
    else:
        _table(secrets)


@app.command()
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The secret's name.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Delete a secret; attempts of actions that still name it fail (secret_error)."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        client.delete_secret(name)
    if state.json:
        _render.emit_json({"deleted": name, "tenant": state.tenant})
    else:
        _render.out().print(f"secret {escape(name)} deleted")


@app.command("rotate-master-key")
def rotate_master_key(
    ctx: typer.Context,
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file",
            help="A file holding the new master key (base64 of 32 random bytes). Without it, secrets"
            " sealed under an older key are re-encrypted under the server's current one.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Re-encrypt every tenant's secrets under a new master key (the admin tenant's admin)."""
    import base64
    import binascii

    state = CliState.of(ctx, json=json_)
    key = b""
    if new_key_file is not None:
        try:
            key = base64.b64decode(new_key_file.read_bytes().strip(), validate=True)
        except OSError as exc:
            _fail(state, "--new-key-file", f"cannot read {new_key_file}: {exc.strerror}")
        except (binascii.Error, ValueError):
            _fail(state, "--new-key-file", "not base64 (make one with: head -c 32 /dev/urandom | base64)")
        if len(key) != 32:
            _fail(state, "--new-key-file", f"{len(key)} bytes; a master key is base64 of 32 random bytes")
    with state.client() as client:
        rotation = client.rotate_master_key(key)
    if state.json:
        _render.emit_json(rotation)
        return
    console = _render.out()
    console.print(f"{rotation.resealed} secret(s) re-encrypted under master key {rotation.key_id}")
    if rotation.remaining:
        console.print(
            f"[yellow]{rotation.remaining} secret(s) are sealed under a key this server lacks:"
            " give it in master_key_previous and run this again[/]"
        )
    if not rotation.persisted:
        _render.err().print(
            "[yellow]the server reads its key from a setting (NEOACTIONS_MASTER_KEY): set it to the new key"
            " before the next restart, or the secrets will not open[/]"
        )


__all__ = ["app"]
