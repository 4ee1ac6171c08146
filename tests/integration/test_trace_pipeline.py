"""One published event fanning out to a python action, a queued python action and a webhook:
every span in one trace with the right parents. An engine on the in-memory store, in
process, spans collected by the SDK's in-memory exporter; the webhook is a real HTTP server
on loopback, and it sees the HTTP client span as its parent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

from neoactions.domain.model import ADMIN_TENANT, Action, Event, ExecutionMode, ExecutionStatus, HandlerSpec, Trigger
from neoactions.server.access import Caller
from neoactions.server.bus import InProcessUpdateBus
from neoactions.server.engine import Engine
from neoactions.server.persistence.memory import MemoryStore
from neoactions.server.runners import HandlerRegistry
from neoactions.server.settings import Settings
from neoactions.server.telemetry import tracing
from tests.conftest import eventually
from tests.fixtures.loopback_http import LoopbackServer, serve_http


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


@pytest.fixture
def webhook() -> Iterator[LoopbackServer]:
    with serve_http() as server:
        yield server


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    store = MemoryStore()
    await store.open()
    registry = HandlerRegistry(
        {"data_dir": str(tmp_path), "python_handler_modules": ["shop"], "http_allow_networks": ["127.0.0.0/8"]}
    )
    registry.load_entry_points()
    await registry.start()
    settings = Settings(data_dir=tmp_path, python_handler_modules=["shop"], poll_interval_seconds=0.05)
    engine = Engine(store, registry, InProcessUpdateBus(), settings)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop(5.0)
        await registry.aclose()
        await store.close()


def _action(name: str, handler: HandlerSpec, mode: ExecutionMode = ExecutionMode.ASYNC) -> Action:
    return Action(
        name=name, trigger=Trigger(["orders.created"]), handler=handler, tenant=ADMIN_TENANT, execution_mode=mode
    )


def _hex(span: ReadableSpan) -> tuple[str, str]:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _names(traceparent: str) -> tuple[str, str]:
    """The (trace id, parent span id) a ``traceparent`` names (its flags aside)."""
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00"
    return trace_id, span_id


async def test_one_event_one_trace(engine: Engine, spans: InMemorySpanExporter, webhook: LoopbackServer) -> None:
    python = HandlerSpec("python", {"function": "shop.handlers:alert"})
    await engine.create_action(Caller(), _action("notify", python))
    await engine.create_action(Caller(), _action("later", python, ExecutionMode.QUEUED))
    await engine.create_action(Caller(), _action("hook", HandlerSpec("http", {"url": f"{webhook.url}/hook"})))

    caller = tracing.state.tracer
    assert caller is not None
    with caller.start_as_current_span("caller") as root:
        [published] = await engine.publish(
            Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, "orders.created", data={"order_id": 7})]
        )
    ids = {x.action_name: x.id for x in published.executions}
    assert set(ids) == {"notify", "later", "hook"}

    async def all_done() -> bool:
        done = [await engine.store.get_execution(ADMIN_TENANT, i) for i in ids.values()]
        return all(x.status is ExecutionStatus.SUCCEEDED for x in done)

    await eventually(all_done, within=10.0, what="the three executions to succeed")
    await eventually(lambda: sum(1 for s in spans.get_finished_spans() if s.name.startswith("attempt ")) == 3)

    finished = spans.get_finished_spans()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert {_hex(s)[0] for s in finished} == {trace_id}, [(s.name, _hex(s)) for s in finished]
    by_name: dict[str, list[ReadableSpan]] = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)

    def parent_of(span: ReadableSpan) -> int:
        assert span.parent is not None, span.name
        return span.parent.span_id

    [publish] = by_name["publish orders.created"]
    assert publish.kind is SpanKind.PRODUCER and parent_of(publish) == root.get_span_context().span_id
    [match] = by_name["match"]
    assert parent_of(match) == publish.context.span_id
    assert match.attributes is not None and match.attributes["neoactions.matched"] == 3

    attempts: dict[str, ReadableSpan] = {}
    for action, execution_id in ids.items():
        [schedule] = by_name[f"schedule {action}"]
        assert parent_of(schedule) == publish.context.span_id
        [attempt] = by_name[f"attempt {action}"]
        assert attempt.kind is SpanKind.CONSUMER and parent_of(attempt) == schedule.context.span_id
        attrs: Any = attempt.attributes
        assert attrs["neoactions.execution.id"] == execution_id and attrs["neoactions.attempt"] == 1
        assert attrs["neoactions.outcome"] == "succeeded"
        attempts[action] = attempt
        # the store keeps the schedule span as the parent of the execution's attempts
        stored = await engine.store.get_execution(ADMIN_TENANT, execution_id)
        assert _names(stored.trace_context) == (trace_id, _hex(schedule)[1])

    # the python handler was handed its attempt's span as the parent
    notified = await engine.store.get_execution(ADMIN_TENANT, ids["notify"])
    assert isinstance(notified.output, dict)
    assert _names(notified.output["trace_context"]["traceparent"]) == (trace_id, _hex(attempts["notify"])[1])

    # the webhook: an HTTP client span under its attempt, named as the parent in the request
    [client] = by_name["POST"]
    assert client.kind is SpanKind.CLIENT and parent_of(client) == attempts["hook"].context.span_id
    assert client.attributes is not None and client.attributes["http.response.status_code"] == 200
    [request] = webhook.requests
    assert _names(request.headers["traceparent"]) == (trace_id, _hex(client)[1])


async def test_tracing_off_passes_the_events_context_through(engine: Engine, webhook: LoopbackServer) -> None:
    """Without a tracer nothing is made: runners get the event's own traceparent, as before."""
    assert not tracing.state.enabled
    await engine.create_action(Caller(), _action("hook", HandlerSpec("http", {"url": f"{webhook.url}/hook"})))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    [published] = await engine.publish(
        Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, "orders.created", data={}, metadata={"traceparent": parent})]
    )
    [ex] = published.executions
    assert ex.trace_context == ""
    await eventually(lambda: len(webhook.requests) == 1, within=10.0)
    assert webhook.requests[0].headers["traceparent"] == parent


async def test_a_trace_sampled_out_makes_no_spans_and_passes_its_context_on(
    engine: Engine, webhook: LoopbackServer
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        await engine.create_action(Caller(), _action("hook", HandlerSpec("http", {"url": f"{webhook.url}/hook"})))
        [published] = await engine.publish(Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, "orders.created", data={})])
        [ex] = published.executions
        await eventually(lambda: len(webhook.requests) == 1, within=10.0)
    finally:
        tracing.uninstall()
    version, trace_id, _, flags = ex.trace_context.split("-")
    assert version == "00" and int(trace_id, 16) and not int(flags, 16) & 1  # not sampled
    sent = webhook.requests[0].headers["traceparent"].split("-")
    assert sent[1] == trace_id and not int(sent[3], 16) & 1
    assert exporter.get_finished_spans() == ()


async def test_workflow_steps_are_children_of_the_workflows_attempt(
    engine: Engine, spans: InMemorySpanExporter
) -> None:
    step = {"type": "python", "config": {"function": "shop.handlers:alert"}}
    flow = HandlerSpec("workflow", {"steps": [{"name": "first", "handler": step}, {"name": "second", "handler": step}]})
    await engine.create_action(Caller(), _action("flow", flow))
    [published] = await engine.publish(Caller(), ADMIN_TENANT, [Event("", ADMIN_TENANT, "orders.created", data={})])
    [run] = published.executions

    async def done() -> bool:
        return (await engine.store.get_execution(ADMIN_TENANT, run.id)).status is ExecutionStatus.SUCCEEDED

    await eventually(done, within=10.0, what="the workflow to succeed")

    def attempts(handler_type: str) -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.name.startswith("attempt ") and (s.attributes or {}).get("neoactions.handler_type") == handler_type
        ]

    await eventually(lambda: len(attempts("python")) == 2)
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 1
    flow_attempts = {s.context.span_id for s in attempts("workflow")}
    steps = attempts("python")
    assert all(s.parent is not None and s.parent.span_id in flow_attempts for s in steps)
