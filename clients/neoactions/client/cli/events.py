"""``neoactions publish TYPE --data JSON`` and ``neoactions publish --cloudevent FILE|-``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt, json_argument


def publish(
    ctx: typer.Context,
    type: Annotated[str | None, typer.Argument(help="The event type: orders.created", show_default=False)] = None,
    data: Annotated[str, typer.Option("--data", "-d", help="The payload, a JSON object (or @file.json).")] = "{}",
    metadata: Annotated[str | None, typer.Option(help="Request context, a JSON object (or @file.json).")] = None,
    source: Annotated[str, typer.Option(help="Who publishes the event.")] = "",
    subject: Annotated[str, typer.Option(help="What the event is about.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Ties the event to a flow.")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Events with the same key are published once.")] = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the matched sync actions' results.")] = False,
    cloudevent: Annotated[
        str | None,
        typer.Option(
            "--cloudevent",
            help="Publish a CloudEvents 1.0 JSON document (or a JSON array of them) from FILE, or - for stdin.",
            show_default=False,
        ),
    ] = None,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Publish an event and show the executions it matched."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    if cloudevent is not None:
        if type is not None:
            raise typer.BadParameter("give either TYPE or --cloudevent, not both", param_hint="--cloudevent")
        _publish_cloudevents(state, cloudevent)
        return
    if type is None:
        raise typer.BadParameter("give the event TYPE (or --cloudevent FILE)", param_hint="TYPE")
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


def _publish_cloudevents(state: CliState, source: str) -> None:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}", param_hint="--cloudevent") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc.msg} (line {exc.lineno})", param_hint="--cloudevent") from None
    batch = doc if isinstance(doc, list) else [doc]
    with state.client() as client:
        results = client.publish_cloudevents(batch)
    if state.json:
        _render.emit_json(results if isinstance(doc, list) else results[0])
        return
    for result in results:
        _render.publish_summary(result)


__all__ = ["publish"]
