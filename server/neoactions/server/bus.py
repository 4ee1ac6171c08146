"""The update bus: every :class:`ExecutionUpdate` flows through it to the
``Execute`` and ``WatchExecutions`` streams.

``InProcessUpdateBus`` keeps the last updates in a ring buffer, so a watcher can
resume after the update whose token it holds. Tokens name the bus instance
(``<epoch>.<sequence>``); a token from another instance, or one that fell out of
the buffer, is refused with ``FAILED_PRECONDITION`` — the caller then re-reads
state with ``ListExecutions`` and watches again.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from neoactions.domain.errors import FailedPrecondition, InvalidArgument
from neoactions.domain.model import ExecutionUpdate


@dataclass(frozen=True, slots=True)
class UpdateFilter:
    """Which updates a watcher wants; empty fields match anything. ``tenant`` is required."""

    tenant: str
    action_name: str = ""
    event_id: str = ""
    correlation_id: str = ""
    execution_id: str = ""

    def accepts(self, u: ExecutionUpdate) -> bool:
        return (
            u.tenant == self.tenant
            and (not self.action_name or u.action_name == self.action_name)
            and (not self.event_id or u.event_id == self.event_id)
            and (not self.correlation_id or u.correlation_id == self.correlation_id)
            and (not self.execution_id or u.execution_id == self.execution_id)
        )


class UpdateBus(Protocol):
    def publish(self, update: ExecutionUpdate) -> None: ...

    def subscribe(self, filter: UpdateFilter, resume_token: str = "") -> Subscription: ...

    def token(self, update: ExecutionUpdate) -> str: ...


class Subscription:
    """A live feed of updates for one filter. Use as an async iterator; ``close()`` when done."""

    def __init__(self, filter: UpdateFilter, on_close: Callable[[Subscription], None], maxsize: int) -> None:
        self.filter = filter
        self._queue: asyncio.Queue[ExecutionUpdate | None] = asyncio.Queue(maxsize)
        self._on_close = on_close
        self.overflowed = False

    def also_on_close(self, callback: Callable[[Subscription], None]) -> None:
        """Call ``callback`` too when this subscription closes."""
        first = self._on_close

        def both(sub: Subscription) -> None:
            first(sub)
            callback(sub)

        self._on_close = both

    def _offer(self, update: ExecutionUpdate) -> None:
        try:
            self._queue.put_nowait(update)
        except asyncio.QueueFull:
            # A watcher that cannot keep up is cut off rather than slowing the
            # pipeline or growing without bound; it resumes from its last token.
            self.overflowed = True
            self.close()

    def close(self) -> None:
        self._on_close(self)
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def __aiter__(self) -> AsyncIterator[ExecutionUpdate]:
        while True:
            item = await self._queue.get()
            if item is None:
                if self.overflowed:
                    raise FailedPrecondition(
                        "the watcher fell behind and was cut off; resume with the last token",
                        reason="WATCHER_TOO_SLOW",
                    )
                return
            yield item


class InProcessUpdateBus:
    """Fan-out of updates inside one process, with a bounded replay buffer."""

    def __init__(self, history: int = 50_000, subscriber_queue: int = 10_000) -> None:
        self._epoch = format(int(time.time() * 1000), "x")
        self._seq = itertools.count(1)
        self._history: collections.deque[ExecutionUpdate] = collections.deque(maxlen=history)
        self._subs: dict[str, set[Subscription]] = collections.defaultdict(set)
        self._subscriber_queue = subscriber_queue

    def publish(self, update: ExecutionUpdate) -> None:
        update.sequence = next(self._seq)
        self._history.append(update)
        subs = self._subs.get(update.tenant)
        if subs:
            for sub in list(subs):
                if sub.filter.accepts(update):
                    sub._offer(update)

    def token(self, update: ExecutionUpdate) -> str:
        return f"{self._epoch}.{update.sequence}"

    def subscribe(self, filter: UpdateFilter, resume_token: str = "") -> Subscription:
        sub = Subscription(filter, self._unsubscribe, self._subscriber_queue)
        if resume_token:
            after = self._parse_token(resume_token)
            if self._history and self._history[0].sequence > after + 1:
                raise FailedPrecondition(
                    "resume token expired: updates after it are no longer buffered", reason="RESUME_TOKEN_EXPIRED"
                )
            for update in self._history:
                if update.sequence > after and filter.accepts(update):
                    sub._offer(update)
        self._subs[filter.tenant].add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.filter.tenant)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.filter.tenant]

    def _parse_token(self, token: str) -> int:
        epoch, _, seq = token.partition(".")
        if not seq.isdigit():
            raise InvalidArgument.field("resume_token", "malformed resume token", reason="INVALID_RESUME_TOKEN")
        if epoch != self._epoch:
            raise FailedPrecondition(
                "resume token is from an earlier server run; list executions to catch up",
                reason="RESUME_TOKEN_EXPIRED",
            )
        return int(seq)


__all__ = ["InProcessUpdateBus", "Subscription", "UpdateBus", "UpdateFilter"]
