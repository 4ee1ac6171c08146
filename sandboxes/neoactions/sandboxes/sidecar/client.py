"""A client of one Handler server: one reused channel, health checks, updates mapped to the runner contract."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import jsonschema
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.trace import SpanKind, Status, StatusCode

from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.handler.v1 import handler_pb2 as pb
from neoactions.handler.v1 import handler_pb2_grpc as pb_grpc
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    Log,
    Progress,
    Result,
    RunnerUpdate,
)
from neoactions.server.telemetry import tracing

#: gRPC codes after which another attempt may succeed
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # a sidecar that restarts must be found again quickly
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


@dataclass(frozen=True, slots=True)
class Description:
    """What ``Describe`` said about a handler."""

    name: str
    version: str
    description: str
    config_schema: JSONObject
    capabilities: tuple[str, ...] = field(default=())


class HandlerUnavailable(Exception):
    """The handler server cannot take the execution (unreachable or not serving)."""


def unavailable_message(address: str) -> str:
    """The one message for every way a handler can be unavailable.

    Closed ports, open ports that do not speak gRPC, gRPC servers without the
    Handler service and handlers not serving all read the same, so an action
    cannot use the service to map which ports are open where.
    """
    return f"handler at {address} is unavailable: not reachable, not serving, or not a Handler server"


class HandlerClient:
    """Calls one Handler server over one channel, reused by every execution.

    A channel belongs to the event loop that created it; :class:`SidecarRunner`
    keeps one client per (address, loop). ``target`` is what the channel
    connects to when it differs from ``address`` (e.g. the checked IP a host
    name resolved to); messages name ``address``. ``detailed_errors`` keeps
    gRPC's own words in failures: only for servers the service started itself
    (container sidecars), never for addresses from actions.
    """

    def __init__(
        self,
        address: str,
        *,
        health_interval: float = 5.0,
        target: str | None = None,
        detailed_errors: bool = False,
    ) -> None:
        self.address = address
        self.health_interval = health_interval
        self.detailed_errors = detailed_errors
        self._channel = grpc.aio.insecure_channel(target or address, options=_CHANNEL_OPTIONS)
        self._stub = pb_grpc.HandlerStub(self._channel)
        self._last_healthy = -1e9
        #: a call answered as a Handler server would, on this channel
        self.proven = False
        #: calls running on the channel, and when the last one ended (monotonic)
        self.active = 0
        self.last_used = time.monotonic()
        self._description: Description | None = None
        self._validator: Any = None

    def unavailable(self, detail: str = "") -> str:
        if self.detailed_errors and detail:
            return f"handler at {self.address} is unavailable: {detail}"
        return unavailable_message(self.address)

    async def describe(self, within: float = 5.0) -> Description:
        """``Describe``, cached for the life of the channel."""
        if self._description is None:
            resp = await self._stub.Describe(pb.DescribeRequest(), timeout=within)
            schema = json.loads(resp.config_schema_json) if resp.config_schema_json else {}
            self._description = Description(
                name=resp.name,
                version=resp.version,
                description=resp.description,
                config_schema=schema if isinstance(schema, dict) else {},
                capabilities=tuple(resp.capabilities),
            )
            self.proven = True
        return self._description

    async def check(self, within: float = 2.0) -> tuple[bool, str]:
        """``Check``: (serving, why not). Never raises for an unreachable server."""
        try:
            resp = await self._stub.Check(pb.CheckRequest(), timeout=within)
        except grpc.aio.AioRpcError as exc:
            return False, f"{exc.code().name}: {exc.details() or ''}".strip()
        if resp.status != pb.CheckResponse.SERVING_STATUS_SERVING:
            return False, resp.message or "not serving"
        self.mark_healthy()
        return True, ""

    async def ensure_healthy(self, within: float) -> None:
        """``Check`` unless one passed in the last ``health_interval`` seconds."""
        if time.monotonic() - self._last_healthy < self.health_interval:
            return
        ok, why = await self.check(max(0.05, min(2.0, within)))
        if not ok:
            raise HandlerUnavailable(self.unavailable(f"not serving: {why}"))

    def mark_healthy(self) -> None:
        self._last_healthy = time.monotonic()
        self.proven = True

    async def validate_config(self, config: JSONObject, within: float) -> str | None:
        """Check ``config`` against the handler's own schema; the first problem, or None."""
        desc = await self.describe(within)
        if not desc.config_schema:
            return None
        if self._validator is None:
            cls = jsonschema.validators.validator_for(desc.config_schema)
            self._validator = cls(desc.config_schema)
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(config))
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        return f"{where}: {error.message}"

    async def execute(
        self, config: JSONObject, data: JSON, ctx: ExecutionContext, *, reserve: float = 0.0
    ) -> AsyncIterator[RunnerUpdate]:
        """One ``Execute`` call: logs/progress, then exactly one Result or Failure.

        The call's deadline is the attempt's, less ``reserve`` seconds kept to
        report a timeout before the caller's own clock runs out. With tracing on, the call
        is a gRPC client span, child of the attempt, sent to the handler as its parent.
        """
        if not tracing.state.enabled:
            async for update in self._execute(config, data, ctx, reserve):
                yield update
            return
        attributes = {"rpc.system": "grpc", "rpc.service": "neoactions.handler.v1.Handler", "rpc.method": "Execute"}
        span = tracing.start_child(
            ctx.trace_context, "neoactions.handler.v1.Handler/Execute", SpanKind.CLIENT, attributes
        )
        try:
            async for update in self._execute(
                config, data, replace(ctx, trace_context=tracing.headers_of(span)), reserve
            ):
                if isinstance(update, Failure) and span.is_recording():
                    span.set_attribute("error.type", update.error.type)
                    span.set_status(Status(StatusCode.ERROR, update.error.type))
                yield update
        finally:
            span.end()

    async def _execute(
        self, config: JSONObject, data: JSON, ctx: ExecutionContext, reserve: float
    ) -> AsyncIterator[RunnerUpdate]:
        timeout = ctx.remaining_seconds() - reserve
        if timeout <= 0:
            yield timed_out("the deadline passed before the handler was called")
            return
        request = pb.ExecuteRequest(
            config_json=json.dumps(config),
            input_json=json.dumps(data),
            context=context_message(ctx),
        )
        call = self._stub.Execute(request, timeout=timeout, metadata=call_metadata(ctx))
        ended = False
        try:
            async for update in call:
                mapped = map_update(update)
                if mapped is None:
                    continue
                if isinstance(mapped, Result | Failure):
                    ended = True
                    self.mark_healthy()
                    yield mapped
                    return
                yield mapped
        except grpc.aio.AioRpcError as exc:
            ended = True
            yield failure_from_status(exc, self.address, detailed=self.detailed_errors)
            return
        finally:
            if not ended:
                call.cancel()
        yield Failure.of(
            "protocol_error",
            f"handler at {self.address} ended the stream without a result or an error",
            retryable=True,
        )

    async def close(self) -> None:
        await self._channel.close()


def reserve_for(ctx: ExecutionContext) -> float:
    """Seconds kept back from an attempt's budget to classify and report a timeout ourselves."""
    return min(0.3, ctx.remaining_seconds() * 0.1)


def context_message(ctx: ExecutionContext) -> pb.ExecutionContext:
    deadline = Timestamp()
    deadline.FromDatetime(ctx.deadline)
    return pb.ExecutionContext(
        tenant=ctx.tenant,
        execution_id=ctx.execution_id,
        action=ctx.action_name,
        action_version=ctx.action_version,
        attempt=ctx.attempt,
        idempotency_key=ctx.idempotency_key,
        deadline=deadline,
        trace_context=dict(ctx.trace_context),
        correlation_id=ctx.correlation_id,
        event_id=ctx.event_id,
        event_type=ctx.event_type,
    )


def call_metadata(ctx: ExecutionContext) -> tuple[tuple[str, str], ...]:
    """W3C trace context and the execution id as gRPC metadata."""
    md: list[tuple[str, str]] = []
    trace: Mapping[str, str] = ctx.trace_context
    for key in ("traceparent", "tracestate"):
        if trace.get(key):
            md.append((key, trace[key]))
    if ctx.execution_id:
        md.append(("x-neoactions-execution-id", ctx.execution_id))
    return tuple(md)


def map_update(update: pb.ExecuteUpdate) -> RunnerUpdate | None:
    """One protocol update as a runner update (None for an empty one)."""
    kind = update.WhichOneof("update")
    if kind == "log":
        return Log(update.log.message, update.log.level or "info")
    if kind == "progress":
        return Progress(max(0.0, min(1.0, update.progress.fraction)), update.progress.message)
    if kind == "result":
        text = update.result.output_json
        try:
            return Result(json.loads(text) if text else None)
        except ValueError as exc:
            return Failure.of("invalid_output", f"handler output is not JSON: {exc}")
    if kind == "error":
        e = update.error
        return Failure.of(e.type or "handler_error", e.message, retryable=e.retryable, stack=e.stack)
    return None


def timed_out(message: str) -> Failure:
    """The attempt ran out of time (retryable, like the dispatcher's own timeouts)."""
    return Failure(ExecutionError("timeout", message, retryable=True), timed_out=True)


def failure_from_status(exc: grpc.aio.AioRpcError, address: str, *, detailed: bool = False) -> Failure:
    """A failed call as a classified attempt failure.

    Handlers report their own errors as ``error`` updates, so a status other
    than an expired deadline means the transport or the server failed: unless
    ``detailed``, all of them are one retryable ``handler_unavailable`` with one
    message (see :func:`unavailable_message`).
    """
    code = exc.code()
    details = exc.details() or code.name
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return timed_out(f"handler at {address} did not finish before the deadline")
    if not detailed:
        return Failure.of("handler_unavailable", unavailable_message(address), retryable=True)
    if code == grpc.StatusCode.UNAVAILABLE:
        return Failure.of("handler_unavailable", f"handler at {address}: {details}", retryable=True)
    return Failure.of(
        f"grpc_{code.name.lower()}",
        f"handler at {address}: {details}",
        retryable=code in RETRYABLE_CODES,
    )


async def wait_serving(client: HandlerClient, within: float, interval: float = 0.05) -> None:
    """Poll ``Check`` until the server answers SERVING; raises HandlerUnavailable after ``within`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    why = "no answer"
    while True:
        left = end - loop.time()
        if left <= 0:
            raise HandlerUnavailable(f"handler at {client.address} not serving after {within:.1f}s: {why}")
        ok, why = await client.check(max(0.05, min(1.0, left)))
        if ok:
            return
        await asyncio.sleep(min(interval, max(0.0, end - loop.time())))


__all__ = [
    "Description",
    "HandlerClient",
    "HandlerUnavailable",
    "call_metadata",
    "context_message",
    "failure_from_status",
    "map_update",
    "reserve_for",
    "timed_out",
    "unavailable_message",
    "wait_serving",
]
