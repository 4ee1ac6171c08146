"""Serving a :class:`Handler` over the Handler protocol with grpc.aio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import traceback
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from neoactions.handler.v1 import handler_pb2 as pb
from neoactions.handler.v1 import handler_pb2_grpc as pb_grpc
from neoactions.plugins.sdk.handler import (
    Handler,
    HandlerContext,
    HandlerError,
    Update,
    call_handler,
    thread_safe_emitter,
)

log = logging.getLogger(__name__)

#: where a handler listens when neither an address nor a port is given
DEFAULT_PORT = 50071
#: environment variables the container runner (or an operator) sets
ADDRESS_ENV = "NEOACTIONS_HANDLER_ADDRESS"
PORT_ENV = "NEOACTIONS_HANDLER_PORT"


class HandlerServicer(pb_grpc.HandlerServicer):
    """The protocol's three RPCs around one :class:`Handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def Describe(self, request: pb.DescribeRequest, context: Any) -> pb.DescribeResponse:
        h = self.handler
        return pb.DescribeResponse(
            name=h.name,
            version=h.version,
            description=h.description,
            config_schema_json=json.dumps(h.config_schema),
            capabilities=list(h.capabilities),
        )

    async def Check(self, request: pb.CheckRequest, context: Any) -> pb.CheckResponse:
        try:
            ok = self.handler.check()
            if not isinstance(ok, bool):
                ok = await ok
        except Exception as exc:
            return pb.CheckResponse(status=pb.CheckResponse.SERVING_STATUS_NOT_SERVING, message=str(exc))
        status = pb.CheckResponse.SERVING_STATUS_SERVING if ok else pb.CheckResponse.SERVING_STATUS_NOT_SERVING
        return pb.CheckResponse(status=status)

    async def Execute(self, request: pb.ExecuteRequest, context: Any) -> AsyncIterator[pb.ExecuteUpdate]:
        try:
            config = json.loads(request.config_json) if request.config_json else {}
            data = json.loads(request.input_json) if request.input_json else None
        except ValueError as exc:
            yield _error("invalid_request", f"config_json/input_json is not JSON: {exc}", retryable=False)
            return
        if not isinstance(config, dict):
            yield _error("invalid_request", "config_json must be a JSON object", retryable=False)
            return

        updates: asyncio.Queue[Update] = asyncio.Queue()
        emit = thread_safe_emitter(asyncio.get_running_loop(), updates.put_nowait)
        ctx = _context(request.context, context, emit)
        task = asyncio.ensure_future(call_handler(self.handler, config, data, ctx))
        try:
            while not task.done():
                getter = asyncio.ensure_future(updates.get())
                done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield _update(getter.result())
                else:
                    getter.cancel()
            while not updates.empty():
                yield _update(updates.get_nowait())
            yield _outcome(task)
        finally:
            task.cancel()


def _context(c: pb.ExecutionContext, rpc: Any, emit: Any) -> HandlerContext:
    deadline: datetime | None = None
    if c.HasField("deadline"):
        deadline = c.deadline.ToDatetime(tzinfo=UTC)
    else:
        remaining = rpc.time_remaining() if rpc is not None else None
        if remaining is not None:
            deadline = datetime.now(UTC) + timedelta(seconds=remaining)
    trace = dict(c.trace_context)
    if "traceparent" not in trace and rpc is not None:
        # a caller that sends the trace context only as metadata
        for key, value in rpc.invocation_metadata() or ():
            if key in ("traceparent", "tracestate"):
                trace.setdefault(key, str(value))
    return HandlerContext(
        tenant=c.tenant,
        execution_id=c.execution_id,
        action=c.action,
        action_version=c.action_version,
        attempt=c.attempt or 1,
        idempotency_key=c.idempotency_key,
        deadline=deadline,
        trace_context=trace,
        correlation_id=c.correlation_id,
        event_id=c.event_id,
        event_type=c.event_type,
        emit=emit,
    )


def _update(u: Update) -> pb.ExecuteUpdate:
    if u.fraction is not None:
        return pb.ExecuteUpdate(progress=pb.ProgressUpdate(fraction=u.fraction, message=u.message))
    return pb.ExecuteUpdate(log=pb.LogLine(level=u.level or "info", message=u.message))


def _error(type: str, message: str, *, retryable: bool, stack: str = "") -> pb.ExecuteUpdate:
    return pb.ExecuteUpdate(error=pb.ExecuteError(type=type, message=message, stack=stack, retryable=retryable))


def _outcome(task: asyncio.Future[Any]) -> pb.ExecuteUpdate:
    exc = task.exception()
    if exc is None:
        try:
            return pb.ExecuteUpdate(result=pb.ExecuteResult(output_json=json.dumps(task.result())))
        except (TypeError, ValueError) as err:
            return _error("invalid_output", f"handler output is not JSON: {err}", retryable=False)
    stack = "".join(traceback.format_exception(exc))
    if isinstance(exc, HandlerError):
        return _error(exc.type, exc.message, retryable=exc.retryable, stack=stack)
    return _error(type(exc).__name__, str(exc) or type(exc).__name__, retryable=True, stack=stack)


def resolve_address(port: int | None = None, address: str | None = None) -> str:
    """Where to listen: ``address``, else ``[::]:port``, else the environment, else the default."""
    if address:
        return address
    if port is not None:
        return f"[::]:{port}"
    if os.environ.get(ADDRESS_ENV):
        return os.environ[ADDRESS_ENV]
    return f"[::]:{int(os.environ.get(PORT_ENV, DEFAULT_PORT))}"


def _remove_stale_socket(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def start_server(
    handler: Handler, address: str, *, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
) -> tuple[grpc.aio.Server, int]:
    """Start serving ``handler`` at ``address`` (``host:port`` or ``unix:/path``).

    Returns the started server and the bound port (grpc reports 1 for a unix socket).
    """
    if address.startswith("unix:"):
        # a socket file left by a previous process would make the bind fail
        _remove_stale_socket(Path(address.removeprefix("unix:").removeprefix("//")))
    server = grpc.aio.server(interceptors=list(interceptors) or None)
    pb_grpc.add_HandlerServicer_to_server(HandlerServicer(handler), server)
    port = server.add_insecure_port(address)
    await server.start()
    return server, port


async def serve_async(
    handler: Handler, port: int | None = None, *, address: str | None = None, grace: float = 5.0
) -> None:
    """Serve until SIGTERM/SIGINT, then let in-flight calls finish for ``grace`` seconds."""
    where = resolve_address(port, address)
    server, bound = await start_server(handler, where)
    log.info(
        "handler %s %s serving at %s",
        handler.name,
        handler.version,
        where if where.startswith("unix:") else f"port {bound}",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(server.wait_for_termination())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await server.stop(grace)
        waiter.cancel()


def serve(handler: Handler, port: int | None = None, *, address: str | None = None) -> None:
    """Serve ``handler`` over the Handler protocol until stopped (blocking).

    Without ``port`` or ``address`` it listens at ``$NEOACTIONS_HANDLER_ADDRESS``
    (the container runner sets a unix socket there), else ``[::]:$NEOACTIONS_HANDLER_PORT``,
    else ``[::]:50071``.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_async(handler, port, address=address))


__all__ = [
    "ADDRESS_ENV",
    "DEFAULT_PORT",
    "PORT_ENV",
    "HandlerServicer",
    "resolve_address",
    "serve",
    "serve_async",
    "start_server",
]
