"""A byte cap on every List page, on top of the stores' row cap.

A page of large rows (events of 256 KiB each, executions with their inputs and outputs)
could reach tens of megabytes. A List response larger than :data:`MAX_PAGE_BYTES` is
asked for again with a ``page_size`` of the items that fit, so its ``next_page_token``
is the store's own and continues right after the last item sent.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

#: the largest List page sent, in bytes (below the 4 MiB a gRPC client accepts by default)
MAX_PAGE_BYTES = 3 * 1024 * 1024
#: a length-delimited field's tag and length, at most
_FIELD_OVERHEAD = 6


def items_of(response: Message) -> Any:
    """The page's items: the response's one repeated message field."""
    for field in response.DESCRIPTOR.fields:
        if field.message_type is not None and _is_repeated(field):
            return getattr(response, field.name)
    raise TypeError(f"{response.DESCRIPTOR.full_name} has no repeated message field")


def _is_repeated(field: Any) -> bool:
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


def fitting(items: Any, max_bytes: int) -> int:
    """How many of ``items`` fit in ``max_bytes`` (at least one: a page always makes progress)."""
    size = 0
    for count, item in enumerate(items):
        size += item.ByteSize() + _FIELD_OVERHEAD
        if size > max_bytes:
            return max(count, 1)
    return len(items)


def capped(
    behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]], max_bytes: int = MAX_PAGE_BYTES
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]:
    """A List method whose responses stay within ``max_bytes``."""

    @functools.wraps(behavior)
    async def within(request: Any, context: grpc.aio.ServicerContext) -> Message:
        response = await behavior(request, context)
        if response.ByteSize() <= max_bytes or "page_size" not in request.DESCRIPTOR.fields_by_name:
            return response
        items = items_of(response)
        keep = fitting(items, max_bytes)
        if keep >= len(items):
            return response
        smaller = type(request)()
        smaller.CopyFrom(request)
        smaller.page_size = keep
        again = await behavior(smaller, context)
        rest = items_of(again)
        if len(rest) > keep:
            del rest[keep:]
        return again

    return within


__all__ = ["MAX_PAGE_BYTES", "capped", "fitting", "items_of"]
