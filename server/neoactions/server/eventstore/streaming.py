"""Ordered, bounded pipelines: what ``StreamEvents`` runs each request through.

Requests are read from the stream only while fewer than ``max_in_flight`` are being worked
on, so a slow store stops the reading, and the transport's flow control then stops the
producer: nothing is buffered without bound. Answers go out in request order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: requests of one stream worked on at once
DEFAULT_MAX_IN_FLIGHT = 4


async def ordered(
    source: AsyncIterator[T], work: Callable[[T], Coroutine[Any, Any, R]], max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
) -> AsyncIterator[R | Exception]:
    """``work`` of each item of ``source``, in order; an item whose work raised an ``Exception``
    yields the exception (the stream goes on). At most ``max_in_flight`` items are in work."""
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    slots = asyncio.Semaphore(max_in_flight)
    pending: asyncio.Queue[asyncio.Task[R] | None] = asyncio.Queue()

    async def read() -> None:
        try:
            async for item in source:
                await slots.acquire()  # read the next request only when there is room
                pending.put_nowait(asyncio.create_task(work(item)))
        finally:
            pending.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        while (task := await pending.get()) is not None:
            try:
                result: R | Exception = await task
            except Exception as exc:  # a failed request is an answer, not the end of the stream
                result = exc
            finally:
                slots.release()
            yield result
        await reader  # the source's own error, if it ended with one
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        while not pending.empty():
            task = pending.get_nowait()
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


__all__ = ["DEFAULT_MAX_IN_FLIGHT", "ordered"]
