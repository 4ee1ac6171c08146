"""Tracing from the standard OTEL_* variables: nothing unless an exporter is named; a wrong
value is refused naming the variable; ``console`` writes one JSON span per line."""

from __future__ import annotations

import io
import json

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from neoactions.server.telemetry import tracing


@pytest.fixture(autouse=True)
def _off() -> object:
    yield
    tracing.uninstall()


@pytest.mark.parametrize(
    "env", [{}, {"OTEL_TRACES_EXPORTER": "none"}, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}]
)
def test_nothing_is_made_unless_configured(env: dict[str, str]) -> None:
    assert tracing.configure_from_environment(env) is None
    assert not tracing.state.enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_a_wrong_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        tracing.configure_from_environment(env)
    assert not tracing.state.enabled


def test_console_writes_one_json_span_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    original = ConsoleSpanExporter.__init__

    def to_buffer(self: ConsoleSpanExporter, **kwargs: object) -> None:
        original(self, **{**kwargs, "out": out})  # type: ignore[arg-type]

    monkeypatch.setattr(ConsoleSpanExporter, "__init__", to_buffer)
    provider = tracing.configure_from_environment({"OTEL_TRACES_EXPORTER": "console"}, role="api")
    assert provider is not None and tracing.state.enabled
    tracer = tracing.state.tracer
    assert tracer is not None
    with tracer.start_as_current_span("one"), tracer.start_as_current_span("two"):
        assert tracing.current_ids()[0]
    provider.force_flush()
    spans = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [s["name"] for s in spans] == ["two", "one"]
    assert spans[0]["resource"]["attributes"]["neoactions.role"] == "api"


def test_context_from_a_traceparent() -> None:
    assert tracing.context_from({}) is None
    assert tracing.context_from({"traceparent": "not a traceparent"}) is None
    assert tracing.context_from({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}) is not None
