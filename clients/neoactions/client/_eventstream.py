"""``AsyncClient.event_stream()``: publish over one ``StreamEvents`` stream, each ``send``
answered with its event's id.

Requests go out as they are sent and answers come back in order; at most ``max_in_flight``
requests wait for their answers, so a sender that outruns the server waits in ``send``
(the server reads no faster than its store takes the events). Asyncio only: the blocking
client publishes with ``publish_many``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Self

import grpc

from neoactions.client import _requests as rq
from neoactions.client._errors import translated
from neoactions.domain import errors
from neoactions.domain.errors import FailedPrecondition, NeoActionsError, Unavailable
from neoactions.domain.status import status_code
from neoactions.v1 import events_pb2

DEFAULT_MAX_IN_FLIGHT = 64
_CLASSES = (
    errors.InvalidArgument, errors.NotFound, errors.AlreadyExists, errors.FailedPrecondition, errors.Aborted,
    errors.ResourceExhausted, errors.PermissionDenied, errors.Unauthenticated, errors.Unavailable, errors.Internal,
)  # fmt: skip


def error_for_code(code: int, message: str, reason: str) -> NeoActionsError:
    """The error-tree class of a refused request's ``google.rpc.Code``."""
    for cls in _CLASSES:
        if status_code(cls("")).value[0] == code:
            return cls(message, reason=reason or None)
    return NeoActionsError(message, reason=reason or None)


class EventStream:
    """An open ``StreamEvents`` stream (use as ``async with client.event_stream() as s``)."""

    def __init__(self, method: Any, parent: str, timeout: float | None, max_in_flight: int) -> None:
        if not isinstance(method, grpc.aio.StreamStreamMultiCallable):
            raise FailedPrecondition(
                "event_stream needs the asyncio client (AsyncClient); the blocking Client publishes with publish_many",
                reason="ASYNC_ONLY",
            )
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._method = method
        self._parent = parent
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._outbox: asyncio.Queue[events_pb2.StreamEventsRequest | None] = asyncio.Queue()
        self._waiting: collections.deque[asyncio.Future[events_pb2.StreamEventsResponse]] = collections.deque()
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._failure: NeoActionsError | None = None
        self._first = True

    async def __aenter__(self) -> Self:
        self._call = self._method(self._requests(), timeout=self._timeout)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _requests(self) -> AsyncIterator[events_pb2.StreamEventsRequest]:
        while (request := await self._outbox.get()) is not None:
            yield request

    async def _read(self) -> None:
        try:
            with translated():
                async for response in self._call:
                    future = self._waiting.popleft()
                    if not future.done():
                        future.set_result(response)
        except NeoActionsError as exc:
            self._failure = exc
        finally:
            failure = self._failure or Unavailable("the event stream ended", reason="STREAM_CLOSED")
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(failure)

    async def _exchange(self, events: list[events_pb2.Event]) -> events_pb2.StreamEventsResponse:
        if self._call is None:
            raise FailedPrecondition("use the stream inside `async with client.event_stream() as stream`")
        if self._failure is not None:
            raise self._failure
        async with self._slots:
            future: asyncio.Future[events_pb2.StreamEventsResponse] = asyncio.get_running_loop().create_future()
            self._waiting.append(future)
            parent, self._first = (self._parent if self._first else ""), False
            self._outbox.put_nowait(events_pb2.StreamEventsRequest(parent=parent, events=events))
            response = await future
        if response.error_code:
            raise error_for_code(response.error_code, response.error_message, response.error_reason)
        return response

    async def send(self, event: rq.EventInput) -> str:
        """Publish one event; returns its id (the original's, for a duplicate)."""
        response = await self._exchange([rq.event_input_pb(event, "event")])
        return str(response.event_ids[0])

    async def send_batch(self, events: Iterable[rq.EventInput]) -> list[str]:
        """Publish events in one request (one transaction); returns their ids in order."""
        messages = [rq.event_input_pb(e, f"events[{i}]") for i, e in enumerate(events)]
        response = await self._exchange(messages)
        return [str(i) for i in response.event_ids]

    async def send_cloudevents(self, messages: list[events_pb2.Event]) -> list[str]:
        """Publish already converted CloudEvents (see ``_cloudevents``) in one request."""
        return [str(i) for i in (await self._exchange(messages)).event_ids]

    async def close(self) -> None:
        """End the stream after every answer awaited so far came back."""
        if self._call is None:
            return
        self._outbox.put_nowait(None)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._call.cancel()
        self._call = None


__all__ = ["DEFAULT_MAX_IN_FLIGHT", "EventStream"]
