"""``neoactions serve``: run the service in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on; 0 picks a free one (default: 50051).")] = None,
    http_port: Annotated[
        int | None,
        typer.Option(help="Also serve HTTP (CloudEvents ingest, webhooks, dashboard) here; 0 picks a free port."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics; 0 picks a free port."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Embedded store directory (when no database URL) (default: .neoactions).")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="postgresql://... selects PostgreSQL.")] = None,
    redis_url: Annotated[str | None, typer.Option(help="redis://... for the queued mode.")] = None,
    role: Annotated[str | None, typer.Option(help="api, worker or all (default: all).")] = None,
    processes: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port (needs PostgreSQL and Redis) (default: 1)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve TLS with this certificate chain (PEM); needs --tls-key.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The private key of --tls-cert (PEM).")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="Mutual TLS: accept only clients with a certificate signed by this CA (PEM)."),
    ] = None,
    bootstrap_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Where the first admin API key goes on a first start (a key already in the file is used)"
            " (default: <data-dir>/admin.key; printed once with PostgreSQL)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", exists=True, dir_okay=False, help="A YAML file of settings."),
    ] = None,
) -> None:
    """Serve the gRPC API. Settings: defaults < --config file < NEOACTIONS_* environment < flags."""
    from neoactions.server.app import run
    from neoactions.server.settings import Settings

    try:
        settings = Settings.load(
            config,
            host=host,
            port=port,
            http_port=http_port,
            metrics_port=metrics_port,
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            role=role,
            processes=processes,
            tls_cert=str(tls_cert) if tls_cert else None,
            tls_key=str(tls_key) if tls_key else None,
            tls_client_ca=str(tls_client_ca) if tls_client_ca else None,
            bootstrap_key_file=str(bootstrap_key_file) if bootstrap_key_file else None,
        )
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if settings.role not in ("api", "worker", "all"):
        raise typer.BadParameter(f"must be api, worker or all, got {settings.role!r}", param_hint="--role")
    run(settings)


__all__ = ["serve"]
