"""One wasmtime engine per runner: compiled modules, their caches and the epoch clock.

Compiling is slow (QuickJS ~0.6 s, CPython ~4-6 s) and deserialising a compiled
module is fast (milliseconds), so compiled modules are kept in memory and on disk,
keyed by an engine fingerprint (wasmtime version, target, settings) and the
module's sha256. Deserialising loads native code: the cache directory must be
writable by the service only, like the rest of its data directory.

CPU and wall time are bounded with epoch interruption: a ticker thread advances
the engine's epoch every :data:`TICK_SECONDS` and each store traps when its
deadline epoch passes. Epochs were preferred over fuel because fuel metering cost
~19% on CPython-heavy guests here, and a wall-clock bound is what the action's
timeout means anyway.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import hashlib
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from neoactions.sandboxes.wasm import runtimes
from neoactions.sandboxes.wasm.errors import SandboxProblem

log = logging.getLogger(__name__)

#: resolution of timeouts
TICK_SECONDS = 0.01
#: WASI errno ``notsup``
ENOTSUP = 58
#: user modules kept compiled in memory (the runtimes are always kept)
MODULE_MEMORY_CACHE = 32


@dataclass(frozen=True, slots=True)
class Prepared:
    """A compiled module linked against the sandbox's WASI, ready to instantiate."""

    digest: str
    pre: wasmtime.InstancePre
    #: ``reactor`` or ``command``
    kind: str


class WasmEngine:
    """The engine, its linker, the compiled-module caches and the epoch ticker."""

    def __init__(self, cache_dir: Path, module_dir: Path) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.module_dir = module_dir
        self.fingerprint = hashlib.sha256(
            f"wasmtime-py {_wasmtime_version()} {sys.platform} {platform.machine()} epoch".encode()
        ).hexdigest()[:16]
        self.cache_dir = cache_dir / self.fingerprint
        self._linker = _sandbox_linker(self.engine)
        self._prepared: collections.OrderedDict[str, Prepared] = collections.OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._stop = False
        self._max_ticks = 0
        self._guests = 0
        self._clock = threading.Condition()
        self._ticker = threading.Thread(target=self._tick, name="wasm-epoch", daemon=True)
        self._ticker.start()

    # --- epochs -----------------------------------------------------------

    def _tick(self) -> None:
        """Advance the epoch every tick while a guest runs; sleep while none does (an idle
        clock would wake up, and take the GIL, 100 times a second for nothing). Deadlines
        count ticks from when they are set, so pausing the clock between guests is exact."""
        with self._clock:
            while not self._stop:
                if self._guests:
                    self._clock.wait(TICK_SECONDS)
                    self.engine.increment_epoch()
                else:
                    self._clock.wait()

    @contextlib.contextmanager
    def guest(self) -> Iterator[None]:
        """Keep the epoch clock running while the block runs a guest."""
        with self._clock:
            self._guests += 1
            if self._guests == 1:
                self._clock.notify()
        try:
            yield
        finally:
            with self._clock:
                self._guests -= 1

    def ticks(self, seconds: float) -> int:
        """Epoch ticks for a budget, at least one whole tick past it."""
        ticks = max(1, int(seconds / TICK_SECONDS) + 1)
        self._max_ticks = max(self._max_ticks, ticks)
        return ticks

    def interrupt_all(self) -> None:
        """Make every running guest reach its deadline now (used when closing).

        The epoch only moves forward one tick per call, so step it past the
        furthest deadline ever handed out.
        """
        for _ in range(self._max_ticks + 1):
            self.engine.increment_epoch()

    def close(self) -> None:
        """Stop the epoch clock. Call only once no guest runs: none could stop after."""
        with self._clock:
            self._stop = True
            self._clock.notify()
        self._ticker.join(timeout=1)
        wait_for_output_finalizers()

    # --- modules ----------------------------------------------------------

    def runtime(self, language: str) -> Prepared:
        """The pinned QuickJS or CPython build, verified on first load in this process."""
        build = runtimes.RUNTIMES[language]
        return self._prepare(build.sha256, build.kind, lambda: runtimes.load_verified(build)[1], pinned=True)

    def user_module(self, digest: str) -> Prepared:
        """A WASI command module from the module directory, checked against its digest."""

        def load() -> bytes:
            path = self.module_dir / f"{digest}.wasm"
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise SandboxProblem(
                    "module_not_found", f"no WASI module sha256:{digest} in {self.module_dir}"
                ) from None
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise SandboxProblem("module_integrity", f"{path} has sha256 {actual}, not {digest}")
            return data

        return self._prepare(digest, "command", load, pinned=False)

    def module_exists(self, digest: str) -> bool:
        return (self.module_dir / f"{digest}.wasm").is_file()

    def _prepare(self, digest: str, kind: str, load: Callable[[], bytes], *, pinned: bool) -> Prepared:
        found = self._prepared.get(digest)
        if found is not None:
            return found
        with self._lock:
            lock = self._locks.setdefault(digest, threading.Lock())
        with lock:  # compile each module once even when many executions want it
            found = self._prepared.get(digest)
            if found is not None:
                return found
            module = self._compiled(digest, load())
            _check_exports(module, kind)
            try:
                pre = self._linker.instantiate_pre(module)
            except wasmtime.WasmtimeError as exc:
                raise SandboxProblem("module_invalid", f"module sha256:{digest} cannot be linked: {exc}") from None
            prepared = Prepared(digest=digest, pre=pre, kind=kind)
            with self._lock:
                self._prepared[digest] = prepared
                if not pinned:
                    self._evict()
            return prepared

    def _evict(self) -> None:
        pinned = {b.sha256 for b in runtimes.RUNTIMES.values()}
        user = [d for d in self._prepared if d not in pinned]
        for digest in user[: max(0, len(user) - MODULE_MEMORY_CACHE)]:
            del self._prepared[digest]

    def _compiled(self, digest: str, wasm: bytes) -> wasmtime.Module:
        path = self.cache_dir / f"{digest}.cwasm"
        if path.is_file():
            try:
                return wasmtime.Module.deserialize_file(self.engine, str(path))
            except wasmtime.WasmtimeError as exc:
                # stale or damaged: compile again and overwrite it below
                log.warning("discarding compiled-module cache %s: %s", path, exc)
        try:
            module = wasmtime.Module(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise SandboxProblem("module_invalid", f"module sha256:{digest} does not compile: {exc}") from None
        try:
            self._store(path, bytes(module.serialize()))
        except OSError as exc:  # a read-only data dir costs speed, not correctness
            log.warning("cannot cache compiled module in %s: %s", path.parent, exc)
        return module

    @staticmethod
    def _store(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic: readers never see half a file
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _check_exports(module: wasmtime.Module, kind: str) -> None:
    names = {e.name for e in module.exports}
    needed = {"reactor": {"_initialize", "memory", "malloc", "qjs_init_argv"}, "command": {"_start", "memory"}}[kind]
    missing = needed - names
    if missing:
        raise SandboxProblem("module_invalid", f"a WASI {kind} module must export {', '.join(sorted(missing))}")


def _sandbox_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """WASI preview 1, less blocking sleeps.

    ``poll_oneoff`` (sleep, select) would block the worker thread inside the host,
    where epoch interruption cannot reach; the guest gets "not supported" instead.
    """
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    i32 = wasmtime.ValType.i32()
    linker.define_func(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        wasmtime.FuncType([i32, i32, i32, i32], [i32]),
        _no_poll,
    )
    return linker


def _no_poll(_in: int, _out: int, _n: int, _events: int) -> int:
    return ENOTSUP


def wait_for_output_finalizers(timeout: float = 1.0) -> None:
    """Wait until wasmtime has released every WASI output callback.

    wasmtime drops a store's stdout/stderr callbacks from one of its own I/O
    threads, sometimes a few milliseconds after the store. If the interpreter is
    shutting down by then, calling back into Python aborts with a Rust panic;
    waiting here (at close, and at exit) lets them all run first. The registry of
    callbacks is wasmtime-py's own, so its absence is tolerated.
    """
    from wasmtime import _wasi

    handles = getattr(getattr(_wasi, "CUSTOM_OUTPUTS", None), "handles", None)
    deadline = time.monotonic() + timeout
    while handles and time.monotonic() < deadline:
        time.sleep(0.005)


atexit.register(wait_for_output_finalizers)


def _wasmtime_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("wasmtime")


__all__ = ["TICK_SECONDS", "Prepared", "WasmEngine"]
