"""The servicer wrappers: whatever a request raises fails that request, never the process;
undecodable requests are INVALID_ARGUMENT; List pages stay within their byte cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from neoactions.domain.errors import NotFound
from neoactions.server.api import paging
from neoactions.server.api.errors import Undecodable, streaming, tolerant_decoding, unary
from neoactions.v1 import events_pb2


class FakeContext:
    """What the wrappers use of a ``grpc.aio.ServicerContext``."""

    def __init__(self) -> None:
        self.status: grpc.Status | None = None

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise grpc.aio.AbortError()

    @property
    def code(self) -> grpc.StatusCode:
        assert self.status is not None
        return self.status.code  # type: ignore[no-any-return]

    @property
    def reason(self) -> str:
        assert self.status is not None
        for key, value in self.status.trailing_metadata:
            if key == "grpc-status-details-bin":
                for detail in status_pb2.Status.FromString(value).details:
                    if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                        info = error_details_pb2.ErrorInfo()
                        detail.Unpack(info)
                        return info.reason
        return ""


class Servicer:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    @unary
    async def Get(self, request: Any, context: Any) -> Any:
        raise self.exc

    @streaming
    async def Watch(self, request: Any, context: Any) -> AsyncIterator[int]:
        yield 1
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SystemExit(3), grpc.StatusCode.INTERNAL),
        (KeyboardInterrupt(), grpc.StatusCode.INTERNAL),
        (GeneratorExit(), grpc.StatusCode.INTERNAL),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
        (RecursionError(), grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound("no such action"), grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_whatever_a_request_raises_fails_only_the_request(exc: BaseException, code: grpc.StatusCode) -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await Servicer(exc).Get(None, context)
    assert context.code is code
    context = FakeContext()
    seen = []
    with pytest.raises(grpc.aio.AbortError):
        async for item in Servicer(exc).Watch(None, context):
            seen.append(item)
    assert seen == [1] and context.code is code


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), grpc.aio.AbortError()])
async def test_cancellation_and_abort_pass_through(exc: BaseException) -> None:
    context = FakeContext()
    with pytest.raises(type(exc)):
        await Servicer(exc).Get(None, context)
    with pytest.raises(type(exc)):
        async for _ in Servicer(exc).Watch(None, context):
            pass
    assert context.status is None


async def test_a_stream_closed_by_grpc_closes_the_servicer_generator() -> None:
    closed = asyncio.Event()

    class Endless:
        @streaming
        async def Watch(self, request: Any, context: Any) -> AsyncIterator[int]:
            try:
                while True:
                    yield 1
            finally:
                closed.set()

    context = FakeContext()
    stream = Endless().Watch(None, context)
    assert await anext(stream) == 1
    await stream.aclose()  # as gRPC does when the client goes away
    assert closed.is_set() and context.status is None


async def test_undecodable_requests_are_invalid_argument() -> None:
    calls: list[Any] = []

    async def behavior(request: Any, context: Any) -> events_pb2.Event:
        calls.append(request)
        return events_pb2.Event()

    handler = tolerant_decoding(
        grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=events_pb2.GetEventRequest.FromString,
            response_serializer=events_pb2.Event.SerializeToString,
        )
    )
    h: Any = handler
    request = h.request_deserializer(b"\xff\xff\xff\xff")
    assert isinstance(request, Undecodable) and request.message_type == "neoactions.v1.GetEventRequest"
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await h.unary_unary(request, context)
    assert context.code is grpc.StatusCode.INVALID_ARGUMENT and context.reason == "MALFORMED_REQUEST"
    assert calls == []
    good = h.request_deserializer(events_pb2.GetEventRequest(name="tenants/admin/events/x").SerializeToString())
    await h.unary_unary(good, FakeContext())
    assert [c.name for c in calls] == ["tenants/admin/events/x"]


def test_a_page_keeps_the_items_that_fit_and_always_one() -> None:
    events = [events_pb2.Event(data_json="x" * 1000) for _ in range(10)]
    assert paging.fitting(events, 3_500) == 3
    assert paging.fitting(events, 100) == 1
    assert paging.fitting(events, 10**6) == 10
    assert paging.items_of(events_pb2.ListEventsResponse(events=events)) == events


async def test_an_oversized_page_is_asked_for_again_with_fewer_rows() -> None:
    asked: list[int] = []

    async def list_events(request: events_pb2.ListEventsRequest, context: Any) -> events_pb2.ListEventsResponse:
        asked.append(request.page_size)
        rows = [events_pb2.Event(id=str(i), data_json="x" * 1000) for i in range(request.page_size)]
        return events_pb2.ListEventsResponse(events=rows, next_page_token=f"after-{request.page_size - 1}")

    capped = paging.capped(list_events, max_bytes=5_000)
    page = await capped(events_pb2.ListEventsRequest(page_size=50, page_token="t"), FakeContext())
    assert asked == [50, 4]
    assert [e.id for e in page.events] == ["0", "1", "2", "3"] and page.next_page_token == "after-3"
    assert page.ByteSize() <= 5_000
    small = await capped(events_pb2.ListEventsRequest(page_size=2), FakeContext())
    assert len(small.events) == 2 and asked[-1] == 2
