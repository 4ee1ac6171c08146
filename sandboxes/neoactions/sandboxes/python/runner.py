"""In-process python runner (see the package docstring for the handler contract)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import inspect
import json
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from neoactions.server.errors import InvalidArgument
from neoactions.server.model import JSON, JSONObject
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    Log,
    Progress,
    Result,
    RunnerUpdate,
)

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["function"],
    "properties": {
        "function": {
            "type": "string",
            "pattern": r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$",
            "description": "module:attr of a function or a class with execute()",
        }
    },
    "additionalProperties": True,
}


#: put on a run's update queue once its handler returned or raised
_ENDED: Any = object()


class NonRetryableError(Exception):
    """Raise from a handler to fail the execution at once, whatever its retry policy."""


class HandlerContext:
    """What a python handler sees as ``ctx``."""

    def __init__(self, ctx: ExecutionContext, emit: Callable[[RunnerUpdate], None]) -> None:
        self._ctx = ctx
        self._emit = emit
        self.tenant = ctx.tenant
        self.execution_id = ctx.execution_id
        self.action = ctx.action_name
        self.action_version = ctx.action_version
        self.attempt = ctx.attempt
        self.idempotency_key = ctx.idempotency_key
        self.deadline: datetime = ctx.deadline
        self.trace_context = dict(ctx.trace_context)
        self.correlation_id = ctx.correlation_id
        self.event_id = ctx.event_id
        self.event_type = ctx.event_type

    def remaining_seconds(self) -> float:
        return self._ctx.remaining_seconds()

    def log(self, message: str, level: str = "info") -> None:
        """A line on the execution's stream (safe from any thread)."""
        self._emit(Log(str(message), level))

    def progress(self, fraction: float, message: str = "") -> None:
        self._emit(Progress(max(0.0, min(1.0, float(fraction))), message))


def resolve(ref: str) -> Callable[..., Any]:
    """Import ``module:attr``; a class is instantiated once and its ``execute`` returned."""
    module_name, _, attr_path = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidArgument.field(
            "function", f"cannot import module {module_name!r}: {exc}", reason="UNKNOWN_HANDLER_FUNCTION"
        ) from None
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise InvalidArgument.field(
                "function", f"{module_name!r} has no attribute {attr_path!r}", reason="UNKNOWN_HANDLER_FUNCTION"
            ) from None
    if inspect.isclass(target):
        execute = getattr(target(), "execute", None)
        if not callable(execute):
            raise InvalidArgument.field(
                "function", f"class {ref!r} has no execute() method", reason="UNKNOWN_HANDLER_FUNCTION"
            )
        return execute  # type: ignore[no-any-return]
    if not callable(target):
        raise InvalidArgument.field("function", f"{ref!r} is not callable", reason="UNKNOWN_HANDLER_FUNCTION")
    return target  # type: ignore[no-any-return]


class PythonRunner:
    """Runs python handlers; sync ones in a bounded thread pool."""

    def __init__(self, max_threads: int = 32) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_threads, thread_name_prefix="python-handler")
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def handler(self, ref: str) -> Callable[..., Any]:
        fn = self._handlers.get(ref)
        if fn is None:
            with self._lock:
                fn = self._handlers.get(ref) or resolve(ref)
                self._handlers[ref] = fn
        return fn

    def validate(self, config: JSONObject) -> None:
        self.handler(str(config["function"]))

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        try:
            fn = self.handler(str(config["function"]))
        except InvalidArgument as exc:
            yield Failure.of("handler_not_found", exc.message)
            return
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[RunnerUpdate] = asyncio.Queue()
        on_loop = threading.get_ident()

        def emit(update: RunnerUpdate) -> None:
            if threading.get_ident() == on_loop:
                updates.put_nowait(update)
            else:
                loop.call_soon_threadsafe(updates.put_nowait, update)

        hctx = HandlerContext(ctx, emit)
        task = asyncio.ensure_future(self._call(fn, config, data, hctx))
        # the end goes through the queue too, after every update the handler emitted
        task.add_done_callback(lambda _: updates.put_nowait(_ENDED))
        try:
            while (update := await updates.get()) is not _ENDED:
                yield update
            yield _outcome(task)
        finally:
            task.cancel()

    async def _call(self, fn: Callable[..., Any], config: JSONObject, data: JSON, hctx: HandlerContext) -> JSON:
        if inspect.iscoroutinefunction(fn):
            return await fn(config, data, hctx)
        call = contextvars.copy_context().run
        result = await asyncio.get_running_loop().run_in_executor(self._pool, call, fn, config, data, hctx)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _outcome(task: asyncio.Future[JSON]) -> RunnerUpdate:
    exc = task.exception()
    if exc is None:
        output = task.result()
        try:
            json.dumps(output)
        except (TypeError, ValueError) as err:
            return Failure.of("invalid_output", f"handler output is not JSON: {err}")
        return Result(output)
    stack = "".join(traceback.format_exception(exc))
    return Failure.of(
        type(exc).__name__,
        str(exc) or type(exc).__name__,
        stack=stack,
        retryable=not isinstance(exc, NonRetryableError),
    )


def register(registry: HandlerRegistry) -> None:
    """Entry point of the built-in ``python`` handler type."""
    runner = PythonRunner(int(registry.settings.get("python_threads", 32)))
    registry.register(
        HandlerType(
            name="python",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="Trusted in-process Python: module:function or module:Class with execute()",
            validate=runner.validate,
            close=runner.aclose,
        )
    )


__all__ = ["CONFIG_SCHEMA", "HandlerContext", "NonRetryableError", "PythonRunner", "register", "resolve"]
