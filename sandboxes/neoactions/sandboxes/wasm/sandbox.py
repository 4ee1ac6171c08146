"""One execution in a fresh store and instance: blocking, runs on a worker thread.

Nothing leaks between executions: each gets its own store (memory, tables,
globals) and its own WASI context with no preopened directories, no environment,
no inherited stdio and no sockets. Everything a guest can observe of the host is
its argv, a clock, random bytes, and (for raw modules) the input on stdin.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass

import wasmtime
from wasmtime._instance import InstanceExports

from neoactions.domain.model import ExecutionError
from neoactions.sandboxes.wasm.config import MIB, Limits
from neoactions.sandboxes.wasm.engine import Prepared, WasmEngine
from neoactions.sandboxes.wasm.guest import Invocation
from neoactions.sandboxes.wasm.output import GuestOutput
from neoactions.server.runners import Failure, Result

WASM_PAGE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Job:
    """Everything one execution needs, prepared on the event loop."""

    invocation: Invocation
    limits: Limits
    #: ``time.monotonic()`` by which the attempt must end (``ctx.deadline``)
    deadline: float
    #: the input for a raw module's stdin (``None`` for the language runtimes)
    stdin: bytes | None = None


def run(engine: WasmEngine, prepared: Prepared, job: Job, output: GuestOutput) -> Result | Failure:
    """Run ``job`` to its end and classify what happened."""
    budget = min(job.limits.timeout_seconds, job.deadline - time.monotonic())
    if budget <= 0:
        return _timed_out("the attempt's deadline passed before the guest started")
    stdin_path = _stdin_file(job.stdin) if job.stdin is not None else None
    store = wasmtime.Store(engine.engine)
    try:
        wasi = wasmtime.WasiConfig()
        # a reactor gets its real argv through qjs_init_argv, from linear memory
        wasi.argv = job.invocation.argv if prepared.kind == "command" else job.invocation.argv[:1]
        wasi.stdout_custom = output.stdout
        wasi.stderr_custom = output.stderr
        if stdin_path is not None:
            wasi.stdin_file = stdin_path
        store.set_wasi(wasi)
        store.set_limits(memory_size=job.limits.memory_bytes, instances=1, memories=1, tables=4)
        store.set_epoch_deadline(engine.ticks(budget))
        with engine.guest():
            return _instantiate_and_call(store, prepared, job, output)
    finally:
        del store  # drop the store (and its WASI callbacks) on this thread, now
        if stdin_path is not None:
            os.unlink(stdin_path)


def _instantiate_and_call(store: wasmtime.Store, prepared: Prepared, job: Job, output: GuestOutput) -> Result | Failure:
    limits = job.limits
    try:
        instance = prepared.pre.instantiate(store)
    except wasmtime.WasmtimeError as exc:
        if "memory" in str(exc) and "limit" in str(exc):
            return _memory(limits, f"the module needs more initial memory than the limit: {exc}")
        return Failure.of("module_invalid", f"cannot instantiate the module: {exc}")
    exports = instance.exports(store)
    memory = exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    exit_code: int | None = None
    try:
        if prepared.kind == "reactor":
            exit_code = _call_reactor(store, exports, memory, job.invocation.argv)
        else:
            start = exports["_start"]
            assert isinstance(start, wasmtime.Func)
            start(store)
            exit_code = 0
    except wasmtime.ExitTrap as exc:
        exit_code = exc.code
    except wasmtime.Trap as exc:
        output.close()
        return _trap(exc, memory.data_len(store), limits)
    except wasmtime.WasmtimeError as exc:
        output.close()
        return Failure.of("wasm_error", f"the guest failed: {exc}")
    output.close()
    return _outcome(output, exit_code, limits, job.invocation)


def _call_reactor(store: wasmtime.Store, exports: InstanceExports, memory: wasmtime.Memory, argv: list[str]) -> int:
    """Run QuickJS's ``qjs_init_argv(argc, argv)``: it evaluates the ``-e`` module."""
    initialize, malloc, init_argv = exports["_initialize"], exports["malloc"], exports["qjs_init_argv"]
    assert isinstance(initialize, wasmtime.Func)
    assert isinstance(malloc, wasmtime.Func)
    assert isinstance(init_argv, wasmtime.Func)
    initialize(store)
    encoded = [arg.encode("utf-8") + b"\x00" for arg in argv]
    block = malloc(store, sum(len(a) for a in encoded) + 4 * len(encoded))
    if not block:
        raise wasmtime.Trap("out of memory before the guest started")
    pointers, offset = [], block + 4 * len(encoded)
    for arg in encoded:
        memory.write(store, arg, offset)
        pointers.append(offset)
        offset += len(arg)
    memory.write(store, struct.pack(f"<{len(pointers)}I", *pointers), block)
    result = init_argv(store, len(encoded), block)
    assert isinstance(result, int)
    return 0 if result == 0 else 1


def _outcome(output: GuestOutput, exit_code: int | None, limits: Limits, invocation: Invocation) -> Result | Failure:
    framed = invocation.framed
    if output.output_overflow:
        return Failure.of(
            "output_too_large",
            f"the result is larger than the {limits.output_bytes}-byte output cap (limits.output_bytes)",
        )
    if output.error is not None:
        return _user_error({**output.error, "stack": invocation.tidy_stack(output.error["stack"])}, limits)
    if output.result is not None and (exit_code == 0 or framed):
        try:
            return Result(json.loads(output.result))
        except ValueError as exc:
            return Failure.of("invalid_output", f"the guest's output is not JSON: {exc}")
    tail = bytes(output.stderr_tail).decode("utf-8", "replace").strip()
    if not framed:
        return Failure.of("exit_status", f"the module exited with status {exit_code}", stack=tail)
    if tail:
        # the runtime reported an error the harness never saw (e.g. a syntax error)
        head, _, rest = tail.partition("\n")
        name, sep, message = head.partition(": ")
        error = {
            "type": name if sep and name.isidentifier() else "Error",
            "message": message or head,
            "stack": invocation.tidy_stack(rest),
        }
        return _user_error(error, limits)
    return Failure.of("no_result", f"the guest stopped (status {exit_code}) without returning a result")


def _user_error(error: dict[str, str], limits: Limits) -> Failure:
    kind, message = error["type"], error["message"]
    if kind == "MemoryError" or (kind == "InternalError" and "out of memory" in message):
        return _memory(limits, f"{kind}: {message}".rstrip(": "), error["stack"])
    return Failure(ExecutionError(type=kind, message=message, stack=error["stack"], retryable=False))


def _trap(exc: wasmtime.Trap, memory_size: int, limits: Limits) -> Failure:
    code = exc.trap_code
    if code is wasmtime.TrapCode.INTERRUPT:
        return _timed_out(f"the guest ran longer than its {limits.timeout_seconds:g} s limit")
    if memory_size + WASM_PAGE > limits.memory_bytes:
        # allocators abort (an ``unreachable`` trap) when memory.grow is refused
        return _memory(limits, f"the guest trapped at the memory limit: {exc.message}")
    if code is wasmtime.TrapCode.STACK_OVERFLOW:
        return Failure.of("stack_overflow", "the guest exhausted its call stack")
    return Failure.of("wasm_trap", f"the guest trapped: {exc.message}")


def _memory(limits: Limits, detail: str, stack: str = "") -> Failure:
    cap = limits.memory_bytes / MIB
    return Failure.of(
        "memory_limit_exceeded",
        f"the guest ran out of memory (limit {cap:g} MiB, limits.memory_mb): {detail}",
        stack=stack,
    )


def _timed_out(message: str) -> Failure:
    return Failure(ExecutionError(type="timeout", message=message, retryable=False), timed_out=True)


def _stdin_file(data: bytes) -> str:
    """WASI stdin comes from a file: a private temp file the guest cannot name."""
    fd, path = tempfile.mkstemp(prefix="neoactions-wasm-", suffix=".json")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


__all__ = ["Job", "run"]
