"""The root ``neoactions`` command: global options and the command tree."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer

from neoactions.client._auth import profile as login_profile
from neoactions.client._config import DEFAULT_TARGET
from neoactions.client.cli import (
    actions,
    audit,
    deadletters,
    eventstore,
    executions,
    keys,
    plugins,
    secrets,
    tenants,
)
from neoactions.client.cli._context import CliState
from neoactions.client.cli._globals import GlobalOptionsAnywhere
from neoactions.client.cli.apply import apply
from neoactions.client.cli.events import publish
from neoactions.client.cli.serve import serve
from neoactions.client.cli.stats import stats
from neoactions.client.cli.testing import test_event
from neoactions.domain.model import ADMIN_TENANT

app = typer.Typer(
    name="neoactions",
    cls=GlobalOptionsAnywhere,
    help="neoactions: publish events, manage actions, run and watch executions.",
    epilog="Global options (--server, --tenant, --json, --timeout, --tls-*, --api-key) may also follow the command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def installed_version() -> str:
    """The installed neoactions distribution's version."""
    try:
        return package_version("neoactions")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"neoactions {installed_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str, typer.Option("--server", "-s", envvar="NEOACTIONS_SERVER", help="The server's host:port.")
    ] = DEFAULT_TARGET,
    tenant: Annotated[
        str, typer.Option("--tenant", "-t", envvar="NEOACTIONS_TENANT", help="The tenant to act in.")
    ] = ADMIN_TENANT,
    json_: Annotated[
        bool, typer.Option("--json", help="Machine output: one JSON document (JSON lines for streams).")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            show_default=False,
            help="Seconds a call may take (default 60); for execute: how long the execution may run.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
    tls_ca: Annotated[
        str,
        typer.Option(
            envvar="NEOACTIONS_TLS_CA",
            show_default=False,
            help="Speak TLS; trust the server's certificate from this CA (PEM).",
        ),
    ] = "",
    tls_cert: Annotated[
        str,
        typer.Option(
            envvar="NEOACTIONS_TLS_CERT", show_default=False, help="Client certificate (PEM), for mutual TLS."
        ),
    ] = "",
    tls_key: Annotated[
        str,
        typer.Option(envvar="NEOACTIONS_TLS_KEY", show_default=False, help="The client certificate's key (PEM)."),
    ] = "",
    api_key: Annotated[
        str,
        typer.Option(
            envvar="NEOACTIONS_API_KEY",
            show_default=False,
            help="The API key (default: the profile `neoactions login` wrote, or a local server's admin.key).",
        ),
    ] = "",
    profile: Annotated[
        str,
        typer.Option(envvar="NEOACTIONS_PROFILE", show_default=False, help="The login profile to use."),
    ] = "",
) -> None:
    """Global options; they may come before or after the command."""
    chosen = login_profile(profile or None)
    if server == DEFAULT_TARGET and chosen.get("server"):
        server = str(chosen["server"])
    ctx.obj = CliState(server=server, tenant=tenant, json=json_, timeout=timeout)
    ctx.obj.tls_ca, ctx.obj.tls_cert, ctx.obj.tls_key = tls_ca, tls_cert, tls_key
    ctx.obj.api_key = api_key or str(chosen.get("api_key") or "")


app.command()(serve)
app.command()(stats)
app.command()(apply)
app.command()(publish)
app.command("test-event")(test_event)
app.command()(executions.execute)
app.add_typer(actions.app, name="actions")
app.add_typer(eventstore.app, name="events")
app.add_typer(executions.app, name="executions")
app.add_typer(deadletters.app, name="dlq")
app.add_typer(tenants.app, name="tenants")
app.add_typer(secrets.app, name="secrets")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(plugins.app, name="plugins")
app.command()(keys.login)

__all__ = ["app", "installed_version"]
