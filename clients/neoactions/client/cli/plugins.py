"""``neoactions plugins``: the operator's commands (search, list, show, install, update,
uninstall: calls to the server) and the author's (init, build, keygen, sign, publish, test:
local files, no server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt
from neoactions.domain.errors import InvalidArgument, NeoActionsError

app = typer.Typer(
    help="Plugins: search registries, install and manage them (admin), or build, sign and publish your own.",
    no_args_is_help=True,
)

GrantOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--grant", "-g", help="A capability the plugin requests: net:HOST or secret:NAME (repeat or comma-separate)."
    ),
]


@contextlib.contextmanager
def _local(as_json: bool) -> Iterator[None]:
    """Author commands: a refusal prints ``error: REASON: message`` and exits 1."""
    try:
        yield
    except NeoActionsError as exc:
        _render.error(exc, as_json=as_json)
        raise typer.Exit(1) from None


def _split(spec: str) -> tuple[str, str]:
    name, _, version = spec.partition("@")
    return name, version


# --- operator: the server's plugins ------------------------------------------------------


def _warn_unreachable(unreachable: list[dict[str, str]], as_json: bool) -> None:
    """One line on stderr naming the registries that could not be read (with ``--json``, a
    JSON object ``{"warning": {"message", "unreachable_registries"}}``), so that stdout
    keeps the plugins the others offer."""
    if not unreachable:
        return
    names = ", ".join(u["registry"] for u in unreachable)
    message = f"registries not searched (unreachable): {names}"
    if as_json:
        doc = {"warning": {"message": message, "unreachable_registries": unreachable}}
        sys.stderr.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        detail = "; ".join(" ".join(u["message"].split()) for u in unreachable)
        _render.err().print(f"warning: {escape(message)} ({escape(detail)})", soft_wrap=True)


@app.command()
def search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Matched against names, descriptions and handler types.")] = "",
    registry: Annotated[str, typer.Option(help="One of the server's plugin_registries.")] = "",
    json_: JsonOpt = False,
) -> None:
    """Plugins the server's registries offer."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        answer = client.search_registries(text, registry=registry)
    found = answer["plugins"]
    _warn_unreachable(answer["unreachable_registries"], state.json)
    if state.json:
        _render.emit_json(found)
        return
    table = Table("name", "latest", "kind", "handler types", "installed", "description", box=None)
    for p in found:
        table.add_row(
            escape(p["name"]),
            p["latest"],
            p["kind"],
            escape(", ".join(p["handler_types"])),
            p["installed_version"] or "-",
            escape(p["description"]),
        )
    _render.out().print(table if found else "no plugin found")


@app.command("list")
def list_(
    ctx: typer.Context,
    installed: Annotated[bool, typer.Option("--installed", help="Leave out the built-in handler types.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Installed plugins and the built-in handler types."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        plugins = client.list_plugins(installed_only=installed)
    if state.json:
        _render.emit_json(plugins)
        return
    table = Table("name", "version", "kind", "handler types", "granted", box=None)
    for p in plugins:
        version = p["version"] + (f" (+{len(p['versions']) - 1} older)" if len(p["versions"]) > 1 else "")
        table.add_row(
            escape(p["name"]),
            "built-in" if p["builtin"] else version,
            p["kind"],
            escape(", ".join(t["name"] for t in p["handler_types"])),
            escape(", ".join(p["granted_capabilities"]) or "-"),
        )
    _render.out().print(table)


@app.command()
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The plugin.")], json_: JsonOpt = False) -> None:
    """A plugin's versions, handler types (config schema, examples) and capabilities."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        plugin = client.get_plugin(name)
    if state.json:
        _render.emit_json(plugin)
        return
    console = _render.out()
    console.print(f"[bold]{escape(plugin['name'])}[/] {plugin['version']}  {escape(plugin['description'])}")
    if not plugin["builtin"]:
        console.print(f"versions: {', '.join(plugin['versions'])}   kind: {plugin['kind']}")
        console.print(f"registry: {escape(plugin['registry'])}   signed by: {plugin['signed_by'] or 'unsigned'}")
        console.print(f"requested: {', '.join(plugin['requested_capabilities']) or 'nothing'}")
        console.print(f"granted:   {', '.join(plugin['granted_capabilities']) or 'nothing'}")
    for t in plugin["handler_types"]:
        console.print(f"\n[bold]{escape(t['name'])}[/]  {escape(t['description'])}")
        console.print(escape(json.dumps(t["config_schema"], indent=2)))
        for example in t["examples"]:
            console.print(f"example: {escape(json.dumps(example))}")


@app.command()
def install(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (a version or range: ^1.2, ~1.2.3).")],
    registry: Annotated[
        str, typer.Option(help="One of the server's plugin_registries (default: the first that has it).")
    ] = "",
    grant: GrantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Install a plugin: digest and signature verified, capabilities granted (admin)."""
    state = CliState.of(ctx, json=json_)
    name, version = _split(spec)
    with state.client() as client:
        plugin = client.install_plugin(name, version, registry=registry, grants=grant or [])
    if state.json:
        _render.emit_json(plugin)
    else:
        types = ", ".join(t["name"] for t in plugin["handler_types"])
        _render.out().print(f"plugin {plugin['name']} {plugin['version']} installed: {escape(types)}")


@app.command()
def update(
    ctx: typer.Context,
    spec: Annotated[str, typer.Argument(help="NAME or NAME@VERSION (default: the newest).")],
    grant: GrantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Install a newer version; executions already running finish on theirs (admin)."""
    state = CliState.of(ctx, json=json_)
    name, version = _split(spec)
    with state.client() as client:
        plugin = client.update_plugin(name, version, grants=grant or [])
    if state.json:
        _render.emit_json(plugin)
    else:
        _render.out().print(
            f"plugin {plugin['name']} updated to {plugin['version']} (installed: {', '.join(plugin['versions'])})"
        )


@app.command()
def uninstall(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The plugin.")],
    force: Annotated[bool, typer.Option("--force", help="Disable the enabled actions that use it first.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Remove a plugin; refused while enabled actions use it, unless --force (admin)."""
    state = CliState.of(ctx, json=json_)
    with state.client() as client:
        removed = client.uninstall_plugin(name, force=force)
    if state.json:
        _render.emit_json(removed)
        return
    console = _render.out()
    console.print(f"plugin {name} uninstalled ({', '.join(removed['removed_versions'])})")
    if removed["disabled_actions"]:
        console.print(f"disabled: {', '.join(removed['disabled_actions'])}")


# --- author: local files -------------------------------------------------------------------


def _emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    if as_json:
        _render.emit_json(doc)
    else:
        _render.out().print(text)


@app.command()
def init(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The plugin's name (and its one handler type's).")],
    kind: Annotated[str, typer.Option(help="wasm or python (container: write a Dockerfile and a manifest).")] = "wasm",
    directory: Annotated[Path, typer.Option("--dir", help="Where to create NAME/.")] = Path(),
    json_: JsonOpt = False,
) -> None:
    """Create NAME/: a manifest, a handler returning its input, a test case."""
    from neoactions.plugins import authoring

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        created = authoring.init(name, kind, directory)
    _emit(as_json, {"directory": str(created)}, f"created {created}/ (next: neoactions plugins build {created})")


@app.command()
def build(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The plugin directory.")] = Path(),
    json_: JsonOpt = False,
) -> None:
    """Build the artifact and record its sha256 in the manifest."""
    from neoactions.plugins import authoring
    from neoactions.plugins.registry import sha256

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        artifact = authoring.build(directory)
    digest = sha256(artifact.read_bytes())
    _emit(as_json, {"artifact": str(artifact), "sha256": digest}, f"built {artifact} (sha256 {digest})")


@app.command()
def keygen(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory for plugin-signing.key and plugin-signing.pub.")],
    json_: JsonOpt = False,
) -> None:
    """Write a new Ed25519 signing key pair."""
    from neoactions.plugins import signing

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        private, public = signing.keygen(out)
        key_id = signing.key_id(signing.load_public(public))
    _emit(
        as_json,
        {"private_key": str(private), "public_key": str(public), "key_id": key_id},
        f"wrote {private} (keep it secret) and {public} (key id {key_id}; operators trust this file)",
    )


@app.command()
def sign(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The plugin directory (built).")],
    key: Annotated[Path, typer.Option("--key", help="The private key file (plugin-signing.key).")],
    json_: JsonOpt = False,
) -> None:
    """Sign the manifest (which carries the artifact's sha256)."""
    from neoactions.plugins.authoring import sign_plugin

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        key_id = sign_plugin(directory, key)
    _emit(as_json, {"key_id": key_id}, f"signed {directory} with key {key_id}")


@app.command()
def publish(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The plugin directory (built and signed).")],
    registry: Annotated[Path, typer.Option("--registry", help="A folder registry (created if missing).")],
    json_: JsonOpt = False,
) -> None:
    """Copy the artifact and manifest into a folder registry and list them in its index.json."""
    from neoactions.plugins import registry as registries

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        entry = registries.publish(directory, registry)
    _emit(as_json, entry, f"published {entry['manifest'].rsplit('/', 1)[0]} to {registry}")


@app.command("test")
def test_(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The plugin directory (built).")] = Path(),
    json_: JsonOpt = False,
) -> None:
    """Run the manifest's examples and tests/*.json through the real runner."""
    from neoactions.plugins import authoring

    as_json = CliState.of(ctx, json=json_).json
    with _local(as_json):
        try:
            results = asyncio.run(authoring.run_tests(directory))
        except ModuleNotFoundError as exc:
            raise InvalidArgument(f"plugins test needs the server's runners installed ({exc.name})") from None
    failed = [r for r in results if not r.passed]
    if as_json:
        _render.emit_json([r.to_dict() for r in results])
    else:
        console = _render.out()
        for r in results:
            mark = "[green]ok[/]" if r.passed else "[red]FAIL[/]"
            console.print(f"{mark} {escape(r.handler_type)} {escape(r.case)} {escape(r.message)}")
        console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed or not results:
        raise typer.Exit(1)


__all__ = ["app"]
