"""The gRPC server span of every call (RPC semantic conventions), continuing the caller's
trace when its metadata carries a ``traceparent``. Installed only when tracing is on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry.trace import SpanKind, Status, StatusCode

from neoactions.server.telemetry import tracing


def _carrier(details: grpc.HandlerCallDetails) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in details.invocation_metadata or ():
        if key in ("traceparent", "tracestate") and isinstance(value, str):
            out[key] = value
    return out


def _attributes(method: str) -> dict[str, Any]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps unary and server-streaming handlers in a ``SERVER`` span named ``service/method``."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not tracing.state.enabled:
            return handler
        method: str = details.method
        carrier = _carrier(details)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with tracing.client_span(carrier, method.lstrip("/"), SpanKind.SERVER, _attributes(method)) as (
                    span,
                    _,
                ):
                    try:
                        return await inner(request, context)
                    finally:
                        _status(span, context)

            return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with tracing.client_span(carrier, method.lstrip("/"), SpanKind.SERVER, _attributes(method)) as (
                    span,
                    _,
                ):
                    try:
                        async for item in inner_stream(request, context):
                            yield item
                    finally:
                        _status(span, context)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler


def _status(span: Any, context: grpc.aio.ServicerContext) -> None:
    if span is None or not span.is_recording():
        return
    try:
        code = context.code()
    except Exception:  # not every context exposes it
        code = None
    value = code.value[0] if isinstance(code, grpc.StatusCode) else (code if isinstance(code, int) else 0)
    span.set_attribute("rpc.grpc.status_code", value)
    if value:
        span.set_status(Status(StatusCode.ERROR))


__all__ = ["TracingInterceptor"]
