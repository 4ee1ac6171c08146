"""``neoactions publish TYPE --data JSON``."""

from __future__ import annotations

from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt, json_argument


def publish(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="The event type: orders.created", show_default=False)],
    data: Annotated[str, typer.Option("--data", "-d", help="The payload, a JSON object (or @file.json).")] = "{}",
    metadata: Annotated[str | None, typer.Option(help="Request context, a JSON object (or @file.json).")] = None,
    source: Annotated[str, typer.Option(help="Who publishes the event.")] = "",
    subject: Annotated[str, typer.Option(help="What the event is about.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Ties the event to a flow.")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Events with the same key are published once.")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the matched sync actions' results.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Publish an event and show the executions it matched."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    payload = json_argument(data, "--data")
    meta = json_argument(metadata, "--metadata")
    with state.client() as client:
        result = client.publish(
            type,
            payload,
            metadata=meta,
            source=source,
            subject=subject,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            wait=wait,
        )
    if state.json:
        _render.emit_json(result)
    else:
        _render.publish_summary(result)


__all__ = ["publish"]
