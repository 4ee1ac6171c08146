"""A runner's own span (a container or wasm run), child of the attempt it runs for; the
handler is handed that span as its parent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from neoactions.server.runners import ExecutionContext, Failure, RunnerUpdate
from neoactions.server.telemetry import tracing


async def traced_run(
    name: str,
    ctx: ExecutionContext,
    attributes: Mapping[str, Any],
    run: Callable[[ExecutionContext], AsyncIterator[RunnerUpdate]],
) -> AsyncIterator[RunnerUpdate]:
    """``run(ctx)``'s updates, inside an ``INTERNAL`` span ``name`` when tracing is on (its
    status the run's failure, if any); ``run`` is given the context naming that span."""
    if not tracing.state.enabled:
        async for update in run(ctx):
            yield update
        return
    span = tracing.start_child(ctx.trace_context, name, SpanKind.INTERNAL, attributes)
    try:
        async for update in run(replace(ctx, trace_context=tracing.headers_of(span))):
            if isinstance(update, Failure) and span.is_recording():
                span.set_attribute("error.type", update.error.type)
                span.set_status(Status(StatusCode.ERROR, update.error.type))
            yield update
    finally:
        span.end()


__all__ = ["traced_run"]
