"""With tracing on, a sidecar call is a gRPC client span, child of the attempt's context,
and the handler receives that span as its parent (metadata and execution context)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from neoactions.sandboxes.sidecar import SidecarRunner
from neoactions.server.runners import Result
from neoactions.server.telemetry import tracing
from tests.integration.dockerenv import collect, context
from tests.integration.test_sidecar_runner import runner, served  # noqa: F401 - the fixtures


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


async def test_sidecar_call_is_a_client_span(
    served: Any,  # noqa: F811
    runner: SidecarRunner,  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    address, recorder = served
    ctx = context(5)
    parent = ctx.trace_context["traceparent"].split("-")
    updates = await collect(runner, {"address": address, "config": {"warehouse": "ams-1"}}, {"qty": 1}, ctx)
    assert isinstance(updates[-1], Result)
    [span] = [s for s in spans.get_finished_spans() if s.name == "neoactions.handler.v1.Handler/Execute"]
    assert span.kind is SpanKind.CLIENT and span.parent is not None
    assert f"{span.context.trace_id:032x}" == parent[1] and f"{span.parent.span_id:016x}" == parent[2]
    assert span.attributes is not None and span.attributes["rpc.method"] == "Execute"
    sent = [md for md in recorder.metadata if "x-neoactions-execution-id" in md][-1]["traceparent"].split("-")
    assert sent[1:3] == [parent[1], f"{span.context.span_id:016x}"]
    assert updates[-1].output["trace"]["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"
