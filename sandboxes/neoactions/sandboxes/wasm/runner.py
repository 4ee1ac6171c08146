"""``WasmRunner``: the async face of the sandbox, and the ``wasm`` handler type."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, ExecutionError, JSONObject
from neoactions.sandboxes.fairshare import FairSlots, default_tenant_share
from neoactions.sandboxes.wasm import guest, sandbox
from neoactions.sandboxes.wasm.config import CONFIG_SCHEMA, Limits, Maxima, Program
from neoactions.sandboxes.wasm.engine import Prepared, WasmEngine
from neoactions.sandboxes.wasm.errors import SandboxProblem
from neoactions.sandboxes.wasm.output import GuestOutput
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    Log,
    Result,
    RunnerUpdate,
)
from neoactions.server.telemetry.runs import traced_run

log = logging.getLogger(__name__)

#: how long past its own timeout the event loop waits for a guest's thread
#: before reporting the timeout itself (the engine stops the guest well before)
GRACE_SECONDS = 2.0
#: niceness of the worker threads (see ``_lower_priority``)
WORKER_NICE = 10


class _LogStream:
    """Log updates handed from a worker thread to the event loop, in order.

    One loop wake-up per burst, not per line: the thread appends under a lock and
    only schedules a wake-up when the queue goes from empty to non-empty.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[Log] = []
        self._pending = False
        self.ready = asyncio.Event()

    def push(self, item: Log) -> None:
        with self._lock:
            self._items.append(item)
            if self._pending:
                return
            self._pending = True
        self._loop.call_soon_threadsafe(self.ready.set)

    def drain(self) -> list[Log]:
        with self._lock:
            items, self._items = self._items, []
            self._pending = False
        self.ready.clear()
        return items


class WasmRunner:
    """Runs untrusted JavaScript, Python or WASI modules under wasmtime.

    Guests run on a bounded pool of worker threads; the engine stops them at
    their deadline (cancelling the awaiting task cannot stop a thread). Tenants
    share the workers fairly (:mod:`neoactions.sandboxes.fairshare`): one tenant
    holds at most ``tenant_workers`` of them, and waiting tenants take turns. A
    worker counts as held until its guest's thread has finished, not merely
    until the awaiting task gave up. Guests' limits may not exceed ``maxima``.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        module_dir: Path | None = None,
        cache_dir: Path | None = None,
        workers: int = 2,
        tenant_workers: int | None = None,
        maxima: Maxima | None = None,
    ) -> None:
        self.engine = WasmEngine(
            cache_dir=cache_dir or data_dir / "wasm-cache", module_dir=module_dir or data_dir / "wasm" / "modules"
        )
        workers = max(1, workers)
        self.maxima = maxima or Maxima()
        self.slots = FairSlots(workers, tenant_workers if tenant_workers is not None else default_tenant_share(workers))
        self._warmer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wasm-warm")
        self._pool = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="wasm", initializer=_lower_priority
        )

    def warm(self, languages: tuple[str, ...] = ("javascript", "python")) -> list[concurrent.futures.Future[Prepared]]:
        """Compile (or load from the disk cache) the runtimes in the background."""
        # on a thread of its own: a compile takes seconds, and a worker a tenant was
        # granted must not sit behind it
        return [self._warmer.submit(self.engine.runtime, language) for language in languages]

    def validate(self, config: JSONObject) -> None:
        program = Program.from_config(config)
        self.maxima.check(config)
        if program.module_digest is not None and not self.engine.module_exists(program.module_digest):
            raise InvalidArgument.field(
                "module",
                f"no WASI module sha256:{program.module_digest} in {self.engine.module_dir}",
                reason="WASM_MODULE_NOT_FOUND",
            )

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        """One run of the guest (a ``wasm run`` span under the attempt when tracing is on)."""
        async for update in traced_run("wasm run", ctx, {}, lambda c: self._execute(config, data, c)):
            yield update

    async def _execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        try:
            program = Program.from_config(config)
            self.maxima.check(config)  # again: the maxima may have been lowered since the action was saved
        except InvalidArgument as exc:
            yield Failure.of("invalid_config", exc.message)
            return
        limits = Limits.from_config(config, self.maxima)
        job = _job(program, limits, config, data, ctx)
        loop = asyncio.get_running_loop()
        logs = _LogStream(loop)
        output = GuestOutput(limits, logs.push, framed=job.invocation.framed)
        tenant = ctx.tenant
        try:
            async with asyncio.timeout(ctx.remaining_seconds()):
                await self.slots.acquire(tenant)
        except TimeoutError:
            error = ExecutionError("timeout", "no wasm worker was free before the attempt's deadline", retryable=True)
            yield Failure(error, timed_out=True)
            return
        try:
            work = self._pool.submit(self._run, program, job, output)
        except BaseException:
            self.slots.release(tenant)
            raise
        # the worker is free when the thread is, which may be after this task gave up
        work.add_done_callback(lambda _: self.slots.release(tenant))
        future = asyncio.wrap_future(work, loop=loop)
        # one wake-up source for both logs and completion: no helper task per step
        future.add_done_callback(lambda _: logs.ready.set())
        try:
            # A backstop only: the engine stops the guest at its deadline, and a
            # job still queued at the deadline fails as soon as it starts.
            async with asyncio.timeout(ctx.remaining_seconds() + GRACE_SECONDS):
                while not future.done():
                    await logs.ready.wait()
                    for item in logs.drain():
                        yield item
        except TimeoutError:
            error = ExecutionError("timeout", "the attempt's deadline passed before the guest finished")
            yield Failure(error, timed_out=True)
            return
        finally:
            future.cancel()  # drops a job that has not started yet; a running one ends at its deadline
        for item in logs.drain():
            yield item
        yield future.result()

    def _run(self, program: Program, job: sandbox.Job, output: GuestOutput) -> Result | Failure:
        """Worker thread: find the compiled module, then run the guest."""
        try:
            if program.module_digest is not None:
                prepared = self.engine.user_module(program.module_digest)
            else:
                assert program.language is not None
                prepared = self.engine.runtime(program.language)
        except SandboxProblem as exc:
            return Failure.of(exc.type, exc.message)
        return sandbox.run(self.engine, prepared, job, output)

    async def aclose(self) -> None:
        """Drop queued jobs, stop running guests, wait for the workers, stop the clock."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._warmer.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        # the epoch clock must outlive every guest: without it a guest never traps
        self.engine.interrupt_all()
        self._pool.shutdown(wait=True)
        self._warmer.shutdown(wait=True)
        self.engine.close()


def _lower_priority() -> None:
    """Guests yield the CPU to the event loop (Linux nice is per thread).

    With every core busy running guests, the loop thread otherwise waits its
    turn behind them and health checks stall; a higher nice value for the
    workers keeps the server responsive while throughput is unchanged.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def _job(program: Program, limits: Limits, config: JSONObject, data: JSON, ctx: ExecutionContext) -> sandbox.Job:
    """The guest's input and how to start it."""
    guest_config = {k: v for k, v in config.items() if k != "source"}
    payload = json.dumps({"config": guest_config, "data": data, "context": ctx.to_dict()}, ensure_ascii=False)
    deadline = time.monotonic() + ctx.remaining_seconds()
    if program.language == "javascript":
        return sandbox.Job(guest.javascript(program.source, payload, limits), limits, deadline)
    if program.language == "python":
        return sandbox.Job(guest.python(program.source, payload), limits, deadline)
    return sandbox.Job(guest.module(), limits, deadline, stdin=payload.encode("utf-8"))


def default_cache_dir() -> Path:
    """The service user's cache directory: compiled runtimes are the same for every data directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neoactions" / "wasm"


def register(registry: HandlerRegistry) -> None:
    """Entry point of the ``wasm`` handler type.

    Settings: ``wasm_cache_dir`` (compiled modules; default the user's cache
    directory, ``$XDG_CACHE_HOME/neoactions/wasm`` or ``~/.cache/neoactions/wasm``,
    so every data directory on the machine shares one compile of each runtime),
    ``data_dir``,
    ``wasm_module_dir`` (WASI modules named ``<sha256>.wasm``; default
    ``<data_dir>/wasm/modules``), ``wasm_workers`` (threads running guests,
    default 2), ``wasm_tenant_workers`` (workers one tenant may hold at once;
    default all but a quarter of them, at least one), ``wasm_max_memory_mb`` and
    ``wasm_max_timeout_seconds`` (the largest ``limits`` an action may ask for;
    default 512 and 60), ``wasm_warm`` (languages compiled at start-up in the
    background, default both).
    """
    settings = registry.settings
    data_dir = Path(settings.get("data_dir") or Path(tempfile.gettempdir()) / "neoactions")
    module_dir = settings.get("wasm_module_dir")
    cache_dir = settings.get("wasm_cache_dir")
    runner = WasmRunner(
        data_dir=data_dir,
        module_dir=Path(module_dir) if module_dir else None,
        cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
        workers=int(settings.get("wasm_workers", 2)),
        tenant_workers=int(settings["wasm_tenant_workers"]) if settings.get("wasm_tenant_workers") else None,
        maxima=Maxima.from_settings(settings),
    )
    runner.warm(tuple(settings.get("wasm_warm", ("javascript", "python"))))
    registry.register(
        HandlerType(
            name="wasm",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="Untrusted JavaScript (QuickJS) or Python (CPython) source, or a WASI module, under wasmtime",
            validate=runner.validate,
            close=runner.aclose,
            raw_config_keys=frozenset({"source"}),
        )
    )


__all__ = ["WasmRunner", "register"]
