"""Log lines name the execution they are about (tenant, execution, correlation ids) and the
current trace; text lines for people; payloads only when switched on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from neoactions.server import logjson
from neoactions.server.logjson import JsonLogFormatter, TextLogFormatter, bind, payload


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    log = logging.getLogger("test.logcontext")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield log, stream, handler
    finally:
        log.removeHandler(handler)
        bind()


def test_lines_carry_the_execution_and_trace_ids(logger: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    log, stream, _ = logger
    log.info("before")
    bind(tenant="shop", execution_id="ex-1", correlation_id="order-7")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("attempt") as span:
        log.info("inside")
    bind()
    log.info("after")
    before, inside, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(before) == {"time", "level", "logger", "message"}
    ctx = span.get_span_context()
    assert inside["tenant"] == "shop" and inside["execution_id"] == "ex-1" and inside["correlation_id"] == "order-7"
    assert inside["trace_id"] == f"{ctx.trace_id:032x}" and inside["span_id"] == f"{ctx.span_id:016x}"
    assert "execution_id" not in after


def test_text_lines_for_people(logger: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    log, stream, handler = logger
    handler.setFormatter(TextLogFormatter())
    bind(tenant="shop", execution_id="ex-1")
    try:
        raise ValueError("nope")
    except ValueError:
        log.exception("attempt broke")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR    test.logcontext [shop ex-1] attempt broke")
    assert rest[-1] == "ValueError: nope"


def test_payloads_are_left_out_unless_switched_on() -> None:
    assert payload({"card": "4111"}) == "[not logged: log_payloads is off]"
    logjson.PAYLOADS[0] = True
    try:
        assert payload({"card": "4111"}) == {"card": "4111"}
    finally:
        logjson.PAYLOADS[0] = False
