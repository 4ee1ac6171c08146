"""Servicer plumbing: turn core errors into rich gRPC statuses at the edge.

Whatever goes wrong while serving one request fails that request, never the process:
the wrappers turn every exception — ``BaseException`` included (a ``SystemExit`` or
``KeyboardInterrupt`` raised by code a request reached) — into a failed RPC. Only
cancellation (``asyncio.CancelledError``, a stream closed by gRPC) and gRPC's own
``AbortError`` pass through. A request whose bytes do not decode is answered
``INVALID_ARGUMENT`` (:func:`tolerant_decoding`), not gRPC's ``UNKNOWN``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc

from neoactions.domain.errors import Internal, InvalidArgument, NeoActionsError
from neoactions.domain.status import to_status
from neoactions.server.api import paging

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

#: exceptions that must leave a servicer as they are
_PASS_THROUGH = (asyncio.CancelledError, grpc.aio.AbortError)


def failure_of(where: str, exc: BaseException) -> NeoActionsError:
    """The error a caller sees for ``exc``, raised while serving ``where``."""
    if isinstance(exc, NeoActionsError):
        return exc
    if isinstance(exc, RecursionError):
        # only input nested past every limit gets this deep
        log.warning("%s: a request nested too deeply: %s", where, exc)
        return InvalidArgument(
            "the request is nested too deeply; flatten the data (at most 64 levels of JSON)",
            reason="NESTED_TOO_DEEPLY",
        )
    if isinstance(exc, Exception):
        log.exception("%s failed", where)
    else:
        log.error("%s raised %s; the request fails, the server goes on", where, type(exc).__name__, exc_info=exc)
    return Internal("internal error; see the server log")


def unary(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except _PASS_THROUGH:
            raise
        except BaseException as exc:  # one request must not end the process
            await context.abort_with_status(to_status(failure_of(fn.__qualname__, exc)))
        raise AssertionError("unreachable")

    return wrapper


def streaming(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> AsyncIterator[Resp]:
        items = aiter(fn(self, request, context))
        try:
            while True:
                # only what the servicer raises is caught: a GeneratorExit thrown in at the
                # yield below (gRPC closing the stream) must end this generator as it is
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    return
                except _PASS_THROUGH:
                    raise
                except BaseException as exc:  # one request must not end the process
                    await context.abort_with_status(to_status(failure_of(fn.__qualname__, exc)))
                    return
                yield item
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    return wrapper


class Undecodable:
    """What the server's request decoder gives for bytes that are not the message they should be."""

    __slots__ = ("error", "message_type")

    def __init__(self, message_type: str, error: BaseException) -> None:
        self.message_type = message_type
        self.error = error

    def as_error(self) -> InvalidArgument:
        return InvalidArgument(
            f"the request is not a valid {self.message_type}: {str(self.error)[:200] or type(self.error).__name__};"
            " send a serialized message of the method's request type",
            reason="MALFORMED_REQUEST",
        )


def _tolerant(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    owner = getattr(decode, "__self__", None)
    message_type = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "") or "request message"

    def decoded(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception as exc:
            return Undecodable(message_type, exc)

    return decoded


def _checking_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(behavior)
    async def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            await context.abort_with_status(to_status(request.as_error()))
        return await behavior(request, context)

    return checked


def _checking_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(behavior)
    async def checked(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            await context.abort_with_status(to_status(request.as_error()))
        async for item in behavior(request, context):
            yield item

    return checked


def _checking_requests(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """A bidirectional stream whose requests that do not decode end it with ``INVALID_ARGUMENT``."""

    @functools.wraps(behavior)
    async def checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async def decoded() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await context.abort_with_status(to_status(request.as_error()))
                yield request

        async for item in behavior(decoded(), context):
            yield item

    return checked


def tolerant_decoding(handler: grpc.RpcMethodHandler, paged: bool = False) -> grpc.RpcMethodHandler:
    """``handler`` answering ``INVALID_ARGUMENT`` to a request that does not decode;
    ``paged``: a List method, its pages kept within :data:`paging.MAX_PAGE_BYTES`."""
    h: Any = handler
    if h.request_deserializer is None:
        return handler
    if h.request_streaming:
        if h.stream_stream is None:
            return handler
        return h._replace(
            request_deserializer=_tolerant(h.request_deserializer), stream_stream=_checking_requests(h.stream_stream)
        )
    if h.response_streaming:
        return h._replace(
            request_deserializer=_tolerant(h.request_deserializer), unary_stream=_checking_stream(h.unary_stream)
        )
    behavior = paging.capped(h.unary_unary) if paged else h.unary_unary
    return h._replace(request_deserializer=_tolerant(h.request_deserializer), unary_unary=_checking_unary(behavior))


class TolerantRegistration:
    """A stand-in for a ``grpc.aio.Server`` given to the generated ``add_*Servicer_to_server``
    functions: it registers their method handlers with :func:`tolerant_decoding` applied
    (List methods with their pages capped)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self.services: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the same handlers come again through :meth:`add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        wrapped = {name: tolerant_decoding(h, paged=name.startswith("List")) for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self._server.add_registered_method_handlers(service, wrapped)
        self.services.append(service)


__all__ = ["TolerantRegistration", "Undecodable", "failure_of", "streaming", "tolerant_decoding", "unary"]
