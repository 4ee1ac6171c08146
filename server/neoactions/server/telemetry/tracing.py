"""Traces: one trace per published event, from the publish call through matching, each
execution's scheduling and every attempt into the runner.

Configured by the standard OpenTelemetry variables: ``OTEL_TRACES_EXPORTER`` (``otlp``,
``console`` or ``none``, the default: nothing is exported unless asked), ``OTEL_EXPORTER_OTLP_*``,
``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_SERVICE_NAME``. When tracing is off,
:data:`state` says so and the engine's hooks return before building anything.

The context crosses process boundaries as a W3C ``traceparent``: gRPC metadata of the publish
call (:mod:`neoactions.server.telemetry.interceptor`), the execution's stored
``trace_context`` (a queued attempt on another worker joins the same trace), ``traceparent``
headers of webhooks and gRPC metadata to sidecars (``ExecutionContext.trace_context``).
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from neoactions.domain.model import Attempt, Event, Execution

#: the instrumentation scope of every span the service makes
SCOPE = "neoactions"
_PROPAGATOR = TraceContextTextMapPropagator()
#: what the exporter list may name
EXPORTERS = ("otlp", "console", "none")


@dataclass(slots=True)
class TracingState:
    """Whether spans are made, and by which tracer (the engine's hooks read this first)."""

    enabled: bool = False
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


state = TracingState()


def install(provider: TracerProvider) -> None:
    """Make spans with ``provider`` from now on (tests install one with an in-memory exporter)."""
    state.provider = provider
    state.tracer = provider.get_tracer(SCOPE)
    state.enabled = True


def uninstall() -> None:
    """Stop making spans (flushes and shuts the provider down)."""
    provider = state.provider
    state.enabled, state.tracer, state.provider = False, None, None
    if provider is not None:
        provider.shutdown()


def configure_from_environment(environ: Mapping[str, str] | None = None, role: str = "") -> TracerProvider | None:
    """Set tracing up from the ``OTEL_*`` variables; ``None`` (and nothing installed) when no
    exporter is configured or ``OTEL_SDK_DISABLED`` is true. ``ValueError`` names a bad value."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {unknown[0]!r} (one of {', '.join(EXPORTERS)})")
    names = [n for n in names if n != "none"]
    if not names:
        return None
    in_child = False
    if "otlp" in names:
        _check_protocol(env)
        in_child = _export_process(env)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    # the sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (the SDK reads them)
    # which process made a span: its pid and its role (api, worker, all); OTEL_RESOURCE_ATTRIBUTES adds more
    attributes: dict[str, str | int] = {
        "service.name": env.get("OTEL_SERVICE_NAME", "neoactions"),
        "process.pid": os.getpid(),
    }
    if role:
        attributes["neoactions.role"] = role
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        exporter: SpanExporter
        if name == "console":
            # one JSON object per line on standard output
            exporter = ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
        else:
            if in_child:
                # encoded and sent by a child process: the encoding's CPU off this process's interpreter lock
                from neoactions.server.telemetry.export_process import ExportProcess

                provider.add_span_processor(
                    ExportProcess(
                        {k: v for k, v in env.items() if k.startswith("OTEL_")},
                        dict(provider.resource.attributes),
                        max_queue_size=_positive(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
                        schedule_delay_s=_positive(env, "OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000,
                        max_batch=_positive(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
                    )
                )
                continue
            exporter = _otlp_exporter(env)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return provider


#: ``false`` keeps the OTLP export (encoding and sending) on a thread of the serving process
EXPORT_PROCESS_VARIABLE = "NEOACTIONS_OTLP_EXPORT_PROCESS"


def _export_process(env: Mapping[str, str]) -> bool:
    value = env.get(EXPORT_PROCESS_VARIABLE, "true").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"{EXPORT_PROCESS_VARIABLE}: {value!r} is not true or false")
    return value == "true"


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(env.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def _check_protocol(env: Mapping[str, str]) -> None:
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    if protocol.strip() != "grpc":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; use grpc (the endpoint's port 4317)"
        )


def _otlp_exporter(env: Mapping[str, str]) -> Any:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # endpoint, headers, timeout, insecure: OTEL_EXPORTER_OTLP_(TRACES_)* (the exporter reads them)
    return OTLPSpanExporter()


# --- propagation -----------------------------------------------------------------------------


def context_from(carrier: Mapping[str, str]) -> otel_context.Context | None:
    """The remote parent a ``traceparent`` (and ``tracestate``) in ``carrier`` names, else ``None``."""
    value = carrier.get("traceparent")
    if not value:
        return None
    if len(carrier) == 1 and len(value) == 55 and value.startswith("00-") and value[35] == value[52] == "-":
        # the common case (an execution's stored context): parsed here, without the propagator's regex
        try:
            trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:55], 16)
        except ValueError:
            return None
        if not trace_id or not span_id:
            return None
        parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
        return trace.set_span_in_context(NonRecordingSpan(parent))
    ctx = _PROPAGATOR.extract(dict(carrier))
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def headers_of(span: Span) -> dict[str, str]:
    """``{"traceparent": ..., ["tracestate": ...]}`` naming ``span`` as the parent."""
    out = {"traceparent": traceparent(span)}
    state = span.get_span_context().trace_state
    if state:
        out["tracestate"] = state.to_header()
    return out


def traceparent(span: Span) -> str:
    """The W3C ``traceparent`` naming ``span`` as the parent (``""`` for an invalid span)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def _tracer() -> Tracer:
    assert state.tracer is not None
    return state.tracer


# --- the engine's spans ----------------------------------------------------------------------


@contextmanager
def publishing(tenant: str, events: Sequence[Event]) -> Iterator[Span]:
    """The span of one publish call (a messaging ``publish``): current while the events are
    matched and stored, so the match and schedule spans are its children. Its parent is the
    caller's context (the RPC span), else the ``traceparent`` in the first event's metadata."""
    parent: otel_context.Context | None = None
    if not trace.get_current_span().get_span_context().is_valid and events:
        metadata = events[0].metadata
        if isinstance(metadata, dict) and isinstance(metadata.get("traceparent"), str):
            parent = context_from({k: v for k, v in metadata.items() if k in ("traceparent", "tracestate")})
    destination = events[0].type if len(events) == 1 else "batch"
    with _tracer().start_as_current_span(
        f"publish {destination}", context=parent, kind=SpanKind.PRODUCER, record_exception=True
    ) as span:
        if span.is_recording():
            span.set_attributes(
                {
                    "messaging.system": "neoactions",
                    "messaging.operation.type": "publish",
                    "messaging.destination.name": destination,
                    "messaging.batch.message_count": len(events),
                    "neoactions.tenant": tenant,
                }
            )
        matching = _Matching()
        token = _MATCHING.set(matching)
        try:
            yield span
        finally:
            _MATCHING.reset(token)
            if matching.events and span.is_recording():
                # one match span for the call's events (a batch of 500 makes one, not 500)
                attributes: dict[str, str | int] = {
                    "neoactions.matched": matching.matched,
                    "neoactions.events": matching.events,
                }
                if matching.events == 1:
                    attributes["neoactions.event.id"] = matching.event_id
                _tracer().start_span("match", start_time=matching.start_ns, attributes=attributes).end(matching.end_ns)


@dataclass(slots=True)
class _Matching:
    """What the events of one publish call matched (its match span, made when it ends)."""

    start_ns: int = 0
    end_ns: int = 0
    events: int = 0
    matched: int = 0
    event_id: str = ""


_MATCHING: contextvars.ContextVar[_Matching | None] = contextvars.ContextVar("neoactions_matching", default=None)


def matched(event: Event, executions: Sequence[Execution], started_ns: int) -> None:
    """One event was matched: counted into its publish call's ``match`` span (one per call,
    with how many actions its events matched), and a ``schedule`` span per matched execution;
    each execution remembers its schedule span as the parent of its attempts
    (``Execution.trace_context``, stored with it)."""
    current = trace.get_current_span()
    if not current.is_recording() and current.get_span_context().is_valid:
        # the publish was sampled out: so is everything under it; the executions carry its
        # (unsampled) context on, and nothing is made
        passed_on = traceparent(current)
        for ex in executions:
            ex.trace_context = passed_on
        return
    tracer = _tracer()
    now = time.time_ns()
    matching = _MATCHING.get()
    if matching is not None:  # inside a publish span: counted into its match span
        matching.start_ns = matching.start_ns or started_ns
        matching.end_ns = now
        matching.events += 1
        matching.matched += len(executions)
        matching.event_id = event.id
    else:
        one: dict[str, str | int] = {"neoactions.event.id": event.id, "neoactions.matched": len(executions)}
        tracer.start_span("match", start_time=started_ns, attributes=one).end(now)
    # few attributes, given at the start: a schedule span is made for every execution, and
    # each attribute costs its validation
    for ex in executions:
        schedule = tracer.start_span(
            f"schedule {ex.action_name}",
            start_time=now,
            kind=SpanKind.PRODUCER,
            attributes={"messaging.message.id": ex.id, "neoactions.execution.mode": ex.mode.value},
        )
        ex.trace_context = traceparent(schedule)
        schedule.end(now)


def start_attempt(ex: Execution, attempt: Attempt) -> Span:
    """The span of one attempt (a messaging ``process``), child of the execution's schedule
    span wherever it runs. End it with :func:`end_attempt`."""
    parent = context_from({"traceparent": ex.trace_context}) if ex.trace_context else None
    if parent is not None:
        remote = trace.get_current_span(parent).get_span_context()
        if not remote.trace_flags.sampled:
            # sampled out where it was published: no span, the context passed on as it came
            return NonRecordingSpan(remote)
    return _tracer().start_span(
        f"attempt {ex.action_name or ex.handler_type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.operation.type": "process",
            "neoactions.execution.id": ex.id,
            "neoactions.handler_type": ex.handler_type,
            "neoactions.attempt": attempt.number,
        },
    )


def end_attempt(span: Span, outcome: str, error: str = "") -> None:
    """End an attempt's span with its outcome (``succeeded``, ``failed``, ``scheduled`` for a
    retry, ``cancelled`` ...)."""
    if span.is_recording():
        span.set_attribute("neoactions.outcome", outcome)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
    span.end()


@contextmanager
def client_span(
    trace_context: Mapping[str, str], name: str, kind: SpanKind, attributes: Mapping[str, Any]
) -> Iterator[tuple[Span | None, dict[str, str]]]:
    """A runner's span (an HTTP request, a gRPC call to a sidecar, a container or wasm run),
    child of the attempt whose context the runner was given, and the headers that name it as
    the parent downstream. With tracing off: no span, the context as given."""
    if not state.enabled:
        yield None, dict(trace_context)
        return
    parent = context_from(trace_context)
    with _tracer().start_as_current_span(name, context=parent, kind=kind, record_exception=True) as span:
        if span.is_recording():
            span.set_attributes(dict(attributes))
        yield span, headers_of(span)


def start_child(trace_context: Mapping[str, str], name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> Span:
    """A span (not made current: for async generators, whose context cannot be attached across
    yields), child of the context a runner was handed; the caller ends it. Tracing must be on."""
    span = _tracer().start_span(name, context=context_from(trace_context), kind=kind)
    if span.is_recording():
        span.set_attributes(dict(attributes))
    return span


def current_traceparent() -> str:
    """The ``traceparent`` of the current span (``""`` when tracing is off or none is current):
    what an execution created during an attempt (a workflow step) records as its parent."""
    if not state.enabled:
        return ""
    return traceparent(trace.get_current_span())


def current_ids() -> tuple[str, str]:
    """``(trace id, span id)`` of the current span as hex, ``("", "")`` when none (log lines)."""
    if not state.enabled:
        return "", ""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return "", ""
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


__all__ = [
    "EXPORTERS",
    "TracingState",
    "client_span",
    "configure_from_environment",
    "context_from",
    "current_ids",
    "current_traceparent",
    "end_attempt",
    "headers_of",
    "install",
    "matched",
    "publishing",
    "start_attempt",
    "start_child",
    "state",
    "traceparent",
    "uninstall",
]
