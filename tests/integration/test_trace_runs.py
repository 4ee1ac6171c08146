"""With tracing on, a wasm run is a span of its own under the attempt whose context the
runner was given; a failed run marks its span with the error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from neoactions.server.runners import Failure, HandlerType, Result
from neoactions.server.telemetry import tracing
from tests.integration.test_wasm_runner import context, data_dir, js, registry, wasm  # noqa: F401 - fixtures

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


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


async def test_a_wasm_run_is_a_span_under_the_attempt(
    wasm: HandlerType,  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    ctx = replace(context(), trace_context={"traceparent": PARENT})
    ok = [u async for u in wasm.runner.execute(js("function main() { return 1; }"), None, ctx)]
    bad = [u async for u in wasm.runner.execute(js("function main() { throw new Error('no'); }"), None, ctx)]
    assert isinstance(ok[-1], Result) and isinstance(bad[-1], Failure)
    runs = [s for s in spans.get_finished_spans() if s.name == "wasm run"]
    assert len(runs) == 2
    for span in runs:
        assert f"{span.context.trace_id:032x}" == PARENT.split("-")[1]
        assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT.split("-")[2]
    assert runs[0].status.status_code is StatusCode.UNSET
    assert runs[1].status.status_code is StatusCode.ERROR and runs[1].attributes is not None
    assert runs[1].attributes["error.type"] == bad[-1].error.type
