"""In-process python runner (see the package docstring for the handler contract)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import importlib.metadata
import inspect
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from types import ModuleType
from typing import Any

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.fairshare import FairSlots, default_tenant_share
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

log = logging.getLogger(__name__)

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["function"],
    "properties": {
        "function": {
            "type": "string",
            "maxLength": 512,
            "pattern": r"^([A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*|[A-Za-z0-9_][A-Za-z0-9_.-]*)$",
            "description": "the name of a neoactions.handlers entry point, or module:attr of a function"
            " or a class with execute() in an approved module",
        }
    },
    "additionalProperties": True,
}


#: put on a run's update queue once its handler returned or raised
_ENDED: Any = object()
#: put on a run's update queue at the attempt's deadline
_DEADLINE: Any = object()


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


#: entry points naming the functions the operator made available as python handlers
ENTRY_POINT_GROUP = "neoactions.handlers"
#: how long the first save naming a not yet imported module waits for its import
IMPORT_TIMEOUT_SECONDS = 10.0

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_HINT = (
    "list its module in NEOACTIONS_PYTHON_HANDLER_MODULES (setting python_handler_modules)"
    " or register it as a neoactions.handlers entry point"
)


def _unknown(description: str) -> InvalidArgument:
    return InvalidArgument.field("function", description, reason="UNKNOWN_HANDLER_FUNCTION")


def _split(ref: str) -> tuple[str, str]:
    """``module:attr`` → (module, attr); ``InvalidArgument`` unless both are dotted identifiers."""
    module, sep, attr = ref.partition(":")
    if not sep or not _DOTTED.fullmatch(module) or not _DOTTED.fullmatch(attr):
        raise _unknown(f"{ref[:200]!r} is neither a handler entry point nor module:attr; {_HINT}")
    return module, attr


class TrustedHandlers:
    """The functions the operator made available to ``python`` actions: the
    ``neoactions.handlers`` entry points (by name or by their ``module:attr``) and whatever
    the modules in ``modules`` (and their submodules) define. Deciding needs no import."""

    def __init__(self, modules: Iterable[str] = (), entry_points: Mapping[str, str] | None = None) -> None:
        self.modules = tuple(m.strip() for m in modules if m.strip())
        #: entry point name → module:attr
        self.entry_points = dict(entry_points or {})
        self._registered = frozenset(self.entry_points.values())

    @classmethod
    def installed(cls, modules: Iterable[str] = ()) -> TrustedHandlers:
        """``modules`` and the entry points installed in this environment (read from metadata only)."""
        found = {}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.attr:
                found[ep.name] = f"{ep.module}:{ep.attr}"
            else:
                log.warning("handler entry point %s = %s names no attribute (module:attr); ignored", ep.name, ep.value)
        return cls(modules, found)

    def approves_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)

    def target(self, function: str) -> tuple[str, bool]:
        """The ``module:attr`` that ``function`` names and whether it is a registered entry point;
        ``InvalidArgument`` (field ``function``) when the operator did not approve it."""
        registered = self.entry_points.get(function)
        if registered is not None:
            return registered, True
        module, _ = _split(function)
        if function in self._registered:
            return function, True
        if self.approves_module(module):
            return function, False
        raise _unknown(f"{function[:200]!r} is not an approved handler; {_HINT}")


def parse_modules(value: object) -> list[str]:
    """``python_handler_modules`` as a list: a comma-separated string or a list of names."""
    parts = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, Iterable) else []
    return [str(p).strip() for p in parts if str(p).strip()]


def _import(module_name: str) -> ModuleType:
    """Import ``module_name``; anything it raises — ``SystemExit`` included — as ``InvalidArgument``."""
    try:
        return importlib.import_module(module_name)
    except BaseException as exc:  # an approved module's import must not end the server either
        raise _unknown(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"[:400]) from None


def _lookup(module: ModuleType, ref: str, trusted: TrustedHandlers | None, registered: bool) -> Any:
    """The object ``ref`` names in ``module``, found with ``getattr`` alone (nothing is called or
    instantiated). Outside a registered entry point, the path may not step into another module
    and the object must be defined in an approved one."""
    module_name, _, attr_path = ref.partition(":")
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _unknown(f"{module_name!r} has no attribute {attr_path!r}") from None
        if (
            trusted is not None
            and not registered
            and isinstance(target, ModuleType)
            and not trusted.approves_module(target.__name__)
        ):
            raise _unknown(f"{ref!r} reaches module {target.__name__!r}, which is not approved; {_HINT}")
    if trusted is not None and not registered:
        defined_in = getattr(target, "__module__", None)
        if not isinstance(defined_in, str) or not trusted.approves_module(defined_in):
            raise _unknown(f"{ref!r} is defined in {defined_in!r}, which is not approved; {_HINT}")
    if inspect.isclass(target):
        if not callable(getattr(target, "execute", None)):
            raise _unknown(f"class {ref!r} has no execute() method")
    elif not callable(target):
        raise _unknown(f"{ref!r} is not callable")
    return target


def check(ref: str, trusted: TrustedHandlers | None = None, registered: bool = False) -> Any:
    """What ``ref`` names, checked as at save time: imported if need be, never called or instantiated."""
    module_name, _ = _split(ref)
    module = sys.modules.get(module_name) or _import(module_name)
    return _lookup(module, ref, trusted, registered)


def resolve(ref: str, trusted: TrustedHandlers | None = None, registered: bool = False) -> Callable[..., Any]:
    """Import ``module:attr``; a class is instantiated once and its ``execute`` returned.

    Runs code of the handler's module: call it only for approved functions, off the event loop."""
    target = check(ref, trusted, registered)
    if inspect.isclass(target):
        try:
            instance: Any = target()
        except BaseException as exc:  # the class's own failure, not the server's
            raise _unknown(f"class {ref!r} could not be instantiated: {type(exc).__name__}: {exc}"[:400]) from None
        return instance.execute  # type: ignore[no-any-return]
    return target  # type: ignore[no-any-return]


class _Escaped(Exception):
    """A handler raised a ``BaseException`` that is not a cancellation (``SystemExit``,
    ``KeyboardInterrupt``, ``GeneratorExit``): as a plain exception it fails the attempt
    instead of ending the event loop."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"the handler raised {type(original).__name__}: {original}")
        self.original = original


class PythonRunner:
    """Runs python handlers the operator approved (:class:`TrustedHandlers`); sync ones in a
    bounded thread pool whose threads tenants share fairly (:class:`FairSlots`: a tenant holds
    at most ``tenant_threads`` at once, and waiting tenants take turns)."""

    def __init__(
        self, max_threads: int = 32, trusted: TrustedHandlers | None = None, tenant_threads: int | None = None
    ) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_threads, thread_name_prefix="python-handler")
        #: a thread counts as taken until the handler's call really returns (a thread cannot be
        #: stopped: an attempt that timed out still holds it)
        self._slots = FairSlots(
            max_threads, tenant_threads if tenant_threads is not None else default_tenant_share(max_threads)
        )
        #: imports for save-time checks: one at a time, never on the event loop
        self._importer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="python-handler-import")
        self.trusted = trusted if trusted is not None else TrustedHandlers()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def handler(self, function: str) -> Callable[..., Any]:
        """The callable ``function`` names, resolved once (imports and instantiates: run it off
        the event loop). ``InvalidArgument`` when it is not approved."""
        fn = self._handlers.get(function)
        if fn is None:
            ref, registered = self.trusted.target(function)
            with self._lock:
                fn = self._handlers.get(function) or resolve(ref, self.trusted, registered)
                self._handlers[function] = fn
        return fn

    def validate(self, config: JSONObject) -> None:
        """Save-time check: the function is approved and exists. Nothing is called or instantiated;
        a module not yet imported is imported on a thread of its own (approved modules only)."""
        function = config.get("function")
        if not isinstance(function, str):
            raise _unknown("must be a string")
        if function in self._handlers:
            return
        ref, registered = self.trusted.target(function)
        module_name, _ = _split(ref)
        module = sys.modules.get(module_name)
        if module is None:
            pending = self._importer.submit(_import, module_name)
            try:
                module = pending.result(IMPORT_TIMEOUT_SECONDS)
            except concurrent.futures.TimeoutError:
                raise _unknown(
                    f"module {module_name!r} took longer than {IMPORT_TIMEOUT_SECONDS:g}s to import; try again"
                ) from None
        _lookup(module, ref, self.trusted, registered)

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        if ctx.remaining_seconds() <= 0:  # given up already: the handler's effects would come too late
            yield _timed_out(ctx)
            return
        function = str(config.get("function", ""))
        fn = self._handlers.get(function)
        if fn is None:
            try:
                # approved again here (the action may predate a change of the setting); the
                # import and a class's instantiation run on the pool, off the event loop
                self.trusted.target(function)
                fn = await asyncio.get_running_loop().run_in_executor(self._pool, self.handler, function)
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
        # the deadline goes through the queue as well: one timer per attempt, and nothing
        # that could fire in the consumer while it holds an update
        timer = loop.call_later(ctx.remaining_seconds(), updates.put_nowait, _DEADLINE)
        try:
            while (update := await updates.get()) is not _ENDED:
                if update is _DEADLINE:
                    # an async handler is cancelled; a sync one's thread cannot be stopped and ends on its own
                    yield _timed_out(ctx)
                    return
                yield update
            yield _outcome(task)
        finally:
            timer.cancel()
            task.cancel()

    async def _call(self, fn: Callable[..., Any], config: JSONObject, data: JSON, hctx: HandlerContext) -> JSON:
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(config, data, hctx)
            result = await self._on_thread(fn, config, data, hctx)
            if inspect.isawaitable(result):
                result = await result
            return result
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as exc:  # a task raising SystemExit would stop the event loop
            raise _Escaped(exc) from exc

    async def _on_thread(self, fn: Callable[..., Any], config: JSONObject, data: JSON, hctx: HandlerContext) -> Any:
        """Call a sync handler on one of the tenant's fair share of the pool's threads."""
        tenant = hctx.tenant
        await self._slots.acquire(tenant)
        try:
            running = self._pool.submit(contextvars.copy_context().run, fn, config, data, hctx)
        except BaseException:
            self._slots.release(tenant)
            raise
        running.add_done_callback(lambda _: self._slots.release(tenant))
        return await asyncio.wrap_future(running)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._importer.shutdown(wait=False, cancel_futures=True)


def _timed_out(ctx: ExecutionContext) -> Failure:
    message = f"the handler was still running at the attempt's deadline ({ctx.deadline.isoformat()})"
    return Failure(ExecutionError("timeout", message, retryable=True), timed_out=True)


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
        type(exc.original if isinstance(exc, _Escaped) else exc).__name__,
        str(exc) or type(exc).__name__,
        stack=stack,
        retryable=not isinstance(exc, NonRetryableError),
    )


def register(registry: HandlerRegistry) -> None:
    """Entry point of the built-in ``python`` handler type."""
    modules = parse_modules(registry.settings.get("python_handler_modules", ()))
    tenant_threads = registry.settings.get("python_tenant_threads")
    runner = PythonRunner(
        int(registry.settings.get("python_threads", 32)),
        TrustedHandlers.installed(modules),
        int(tenant_threads) if tenant_threads else None,
    )
    registry.register(
        HandlerType(
            name="python",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="Trusted in-process Python: an approved module:function or module:Class with execute()",
            validate=runner.validate,
            close=runner.aclose,
        )
    )


__all__ = [
    "CONFIG_SCHEMA",
    "ENTRY_POINT_GROUP",
    "HandlerContext",
    "NonRetryableError",
    "PythonRunner",
    "TrustedHandlers",
    "check",
    "parse_modules",
    "register",
    "resolve",
]
