"""What a handler author writes: a function under :func:`handler` or a :class:`Handler`."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

#: the shape of a handler function: ``fn(config, data, ctx)``, sync or async
HandlerFunction: TypeAlias = Callable[[dict[str, Any], Any, "HandlerContext"], Any]


class HandlerError(Exception):
    """Raise to fail the attempt with a chosen type; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, type: str = "", retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.type = type or self.__class__.__name__
        self.retryable = retryable


class NonRetryableError(HandlerError):
    """Raise to fail the execution at once, whatever its retry policy."""

    def __init__(self, message: str, *, type: str = "") -> None:
        super().__init__(message, type=type or "NonRetryableError", retryable=False)


@dataclass(slots=True)
class Update:
    """One streamed update: a log line (``level`` set) or progress (``fraction`` set)."""

    message: str
    level: str = ""
    fraction: float | None = None


class HandlerContext:
    """What a handler sees as ``ctx``: the attempt's identity, ``log()`` and ``progress()``."""

    def __init__(
        self,
        *,
        tenant: str = "",
        execution_id: str = "",
        action: str = "",
        action_version: int = 0,
        attempt: int = 1,
        idempotency_key: str = "",
        deadline: datetime | None = None,
        trace_context: Mapping[str, str] | None = None,
        correlation_id: str = "",
        event_id: str = "",
        event_type: str = "",
        emit: Callable[[Update], None] | None = None,
    ) -> None:
        self.tenant = tenant
        self.execution_id = execution_id
        self.action = action
        self.action_version = action_version
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.deadline = deadline
        self.trace_context: dict[str, str] = dict(trace_context or {})
        self.correlation_id = correlation_id
        self.event_id = event_id
        self.event_type = event_type
        self._emit = emit or (lambda _u: None)

    def remaining_seconds(self) -> float:
        """Seconds left before the deadline (``inf`` without one)."""
        if self.deadline is None:
            return float("inf")
        return max(0.0, (self.deadline - datetime.now(UTC)).total_seconds())

    def log(self, message: str, level: str = "info") -> None:
        """A line on the execution's stream; safe from any thread."""
        self._emit(Update(str(message), level=level))

    def progress(self, fraction: float, message: str = "") -> None:
        self._emit(Update(message, fraction=max(0.0, min(1.0, float(fraction)))))


@dataclass
class Handler:
    """A handler served over the Handler protocol.

    Subclass and override :meth:`execute` (sync or async), or wrap a function
    with :func:`handler`. Override :meth:`check` for a real health check.
    """

    name: str = "handler"
    version: str = "0.0.0"
    description: str = ""
    #: JSON Schema of the config; ``Describe`` returns it
    config_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    capabilities: Sequence[str] = ()

    def execute(self, config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
        """Return the output (any JSON value) or raise to fail the attempt."""
        raise NotImplementedError

    def check(self) -> bool | Awaitable[bool]:
        """True when the handler can take executions."""
        return True


class FunctionHandler(Handler):
    """A :class:`Handler` around one function."""

    def __init__(self, fn: HandlerFunction, **describe: Any) -> None:
        super().__init__(**describe)
        self.fn = fn
        self.__doc__ = fn.__doc__

    def execute(self, config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
        return self.fn(config, data, ctx)

    def __call__(self, config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
        return self.fn(config, data, ctx)


def handler(
    fn: HandlerFunction | None = None,
    *,
    name: str | None = None,
    version: str = "0.0.0",
    description: str = "",
    config_schema: dict[str, Any] | None = None,
    capabilities: Sequence[str] = (),
) -> Any:
    """Turn ``fn(config, data, ctx)`` into a :class:`Handler` that :func:`serve` can serve.

    Use bare (``@handler``) or with the ``Describe`` fields (``@handler(name=..., version=...)``).
    """

    def wrap(f: HandlerFunction) -> FunctionHandler:
        return FunctionHandler(
            f,
            name=name or getattr(f, "__name__", "handler"),
            version=version,
            description=description or (inspect.getdoc(f) or "").split("\n\n")[0],
            config_schema=dict(config_schema or {"type": "object"}),
            capabilities=tuple(capabilities),
        )

    return wrap(fn) if fn is not None else wrap


async def call_handler(h: Handler, config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
    """Run ``h.execute``: coroutines on the loop, sync code in a worker thread."""
    target = h.fn if isinstance(h, FunctionHandler) else h.execute
    if inspect.iscoroutinefunction(target):
        return await target(config, data, ctx)
    run = contextvars.copy_context().run
    result = await asyncio.get_running_loop().run_in_executor(None, run, h.execute, config, data, ctx)
    if inspect.isawaitable(result):
        result = await result
    return result


def thread_safe_emitter(loop: asyncio.AbstractEventLoop, put: Callable[[Update], None]) -> Callable[[Update], None]:
    """An emit function usable from the loop's thread and from worker threads."""
    on_loop = threading.get_ident()

    def emit(update: Update) -> None:
        if threading.get_ident() == on_loop:
            put(update)
        else:
            loop.call_soon_threadsafe(put, update)

    return emit


__all__ = [
    "FunctionHandler",
    "Handler",
    "HandlerContext",
    "HandlerError",
    "HandlerFunction",
    "NonRetryableError",
    "Update",
    "call_handler",
    "handler",
    "thread_safe_emitter",
]
