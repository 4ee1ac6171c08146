"""OTLP export from the export child process (the default for ``OTEL_TRACES_EXPORTER=otlp``):
spans made in this process reach a loopback OTLP receiver with their ids, parents, kinds,
attributes and resource; ``NEOACTIONS_OTLP_EXPORT_PROCESS=false`` keeps the SDK's batch
processor in process; a wrong value names the variable; shutting down ends the child."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from neoactions.server.telemetry import tracing
from neoactions.server.telemetry.export_process import ExportProcess
from tests.e2e.otlp_receiver import Receiver, otlp_receiver

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _off() -> Iterator[None]:
    yield
    tracing.uninstall()


def _env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **extra}


def _processors(provider: object) -> tuple[object, ...]:
    return tuple(provider._active_span_processor._span_processors)  # type: ignore[attr-defined]


def test_spans_reach_the_receiver_through_the_child(receiver: Receiver) -> None:
    provider = tracing.configure_from_environment(_env(receiver), role="worker")
    assert provider is not None
    (processor,) = _processors(provider)
    assert isinstance(processor, ExportProcess)
    tracer = tracing.state.tracer
    assert tracer is not None
    parent = tracing.context_from({"traceparent": CALLER})
    with tracer.start_as_current_span("publish orders", context=parent, kind=SpanKind.PRODUCER) as publish:
        publish.set_attributes({"messaging.batch.message_count": 2, "neoactions.tenant": "acme"})
        attempt = tracer.start_span("attempt ship", kind=SpanKind.CONSUMER, attributes={"neoactions.attempt": 3})
        attempt.record_exception(RuntimeError("boom"))
        attempt.set_status(Status(StatusCode.ERROR, "boom"))
        attempt.end()
    assert provider.force_flush()
    spans = {s.name: s for s in receiver.snapshot()}
    assert set(spans) == {"publish orders", "attempt ship"}
    sent_publish, sent_attempt = spans["publish orders"], spans["attempt ship"]
    assert sent_publish.trace_id == sent_attempt.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert sent_publish.parent_span_id == "00f067aa0ba902b7"
    assert sent_attempt.parent_span_id == sent_publish.span_id == f"{publish.get_span_context().span_id:016x}"
    assert (sent_publish.kind, sent_attempt.kind) == (4, 5)  # OTLP PRODUCER, CONSUMER
    assert sent_publish.attributes == {"messaging.batch.message_count": 2, "neoactions.tenant": "acme"}
    assert sent_attempt.attributes == {"neoactions.attempt": 3}
    assert sent_attempt.resource["neoactions.role"] == "worker"
    assert sent_attempt.resource["service.name"] == "neoactions"

    child = processor._child
    tracing.uninstall()
    assert child.poll() == 0  # ended after exporting what it held


def test_the_batch_processor_stays_in_process_when_asked(receiver: Receiver) -> None:
    provider = tracing.configure_from_environment(_env(receiver, NEOACTIONS_OTLP_EXPORT_PROCESS="false"))
    assert provider is not None
    (processor,) = _processors(provider)
    assert isinstance(processor, BatchSpanProcessor)


def test_a_wrong_switch_names_its_variable(receiver: Receiver) -> None:
    with pytest.raises(ValueError, match="NEOACTIONS_OTLP_EXPORT_PROCESS"):
        tracing.configure_from_environment(_env(receiver, NEOACTIONS_OTLP_EXPORT_PROCESS="maybe"))
    assert not tracing.state.enabled
