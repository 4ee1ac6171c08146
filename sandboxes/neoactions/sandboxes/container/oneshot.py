"""One-shot mode: one fresh container per attempt, JSON on stdin, JSON on stdout.

The container gets ``{"config": ..., "input": ..., "context": ...}`` on stdin
(then EOF) and writes its output as one JSON value on stdout. Exit code 0 is a
result; any other code fails the attempt (75, EX_TEMPFAIL, as retryable), and a
stdout of ``{"error": {"type", "message", "retryable"}}`` on a non-zero exit
chooses the error. Every stderr line becomes a log line. Memory (OOM kill),
process (pids) and time limits fail the attempt with their reason.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from neoactions.domain.model import JSON, ExecutionError
from neoactions.sandboxes.container.config import ContainerSpec
from neoactions.sandboxes.container.engine import ContainerError, DockerEngine, PidsWatch, new_name
from neoactions.sandboxes.sidecar.client import reserve_for
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    Log,
    Result,
    RunnerUpdate,
)

#: exit code a one-shot handler uses to ask for a retry (sysexits EX_TEMPFAIL)
EXIT_TEMPFAIL = 75
#: stderr beyond this many bytes is dropped (after one line saying so)
MAX_LOG_BYTES = 256 * 1024
_STDOUT, _STDERR = 1, 2


@dataclass(slots=True)
class _Streams:
    """What the reader thread collected."""

    stdout: bytearray = field(default_factory=bytearray)
    stdout_overflow: bool = False
    last_stderr: str = ""
    log_bytes: int = 0
    error: str = ""


def stdin_document(spec: ContainerSpec, data: JSON, ctx: ExecutionContext) -> bytes:
    return json.dumps({"config": spec.handler_config, "input": data, "context": ctx.to_dict()}).encode()


class OneShot:
    """Runs one-shot containers; ``streams`` is the pool their stdio threads use."""

    def __init__(self, engine: DockerEngine, streams: concurrent.futures.ThreadPoolExecutor) -> None:
        self.engine = engine
        self.streams = streams

    async def run(
        self, spec: ContainerSpec, image: str, data: JSON, ctx: ExecutionContext
    ) -> AsyncIterator[RunnerUpdate]:
        engine = self.engine
        loop = asyncio.get_running_loop()
        name = new_name("neoactions-oneshot")
        updates: asyncio.Queue[Log] = asyncio.Queue()
        streams = _Streams()
        pids = PidsWatch(None)
        launch: asyncio.Future[tuple[str, Any]] | None = None
        budget = _budget(ctx)
        end = loop.time() + budget  # counted from now: creating and starting the container is part of it
        timed_out = False
        try:
            # shielded: a cancelled attempt must not lose track of a container being created
            launch = asyncio.ensure_future(engine.call(self._launch, spec, image, name))
            try:
                container_id, sock = await asyncio.shield(launch)
                pids = PidsWatch.open(container_id)
            except ContainerError as exc:
                yield Failure.of(exc.type, exc.message, retryable=exc.retryable)
                return
            raw: socket.socket = sock._sock
            emit = _emitter(loop, updates.put_nowait)
            loop.run_in_executor(self.streams, _write_stdin, raw, stdin_document(spec, data, ctx))
            reader = loop.run_in_executor(self.streams, _read_frames, raw, streams, spec.max_output_bytes, pids, emit)
            while not reader.done():
                getter = asyncio.ensure_future(updates.get())
                left = end - loop.time()
                waiting: set[asyncio.Future[Any]] = {reader, getter}
                done, _ = await asyncio.wait(waiting, timeout=max(0.0, left), return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                if not done:  # out of time: kill it, then let the reader see EOF
                    timed_out = True
                    with contextlib.suppress(ContainerError):
                        await engine.call(lambda: engine.api.kill(container_id))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await asyncio.shield(reader)
                    break
            while not updates.empty():
                yield updates.get_nowait()
            try:
                state = await engine.call(_wait_state, engine, container_id)
            except ContainerError as exc:
                yield Failure.of(exc.type, exc.message, retryable=exc.retryable)
                return
            pids.poll()
            yield classify(spec, state, streams, pids.hit, timed_out, budget)
        finally:
            pids.close()
            # in the background (the engine tracks it, aclose waits): the outcome is already out,
            # and a cancelled attempt must not wait for docker to remove its container
            engine.remove_soon(name, after=launch)

    def _launch(self, spec: ContainerSpec, image: str, name: str) -> tuple[str, Any]:
        """Create, attach stdio (before start, so no output is missed), start. Blocking."""
        engine = self.engine
        container_id = engine.create(spec, image, name, stdin=True)
        sock = engine.api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        engine.api.start(container_id)
        return container_id, sock


def _budget(ctx: ExecutionContext) -> float:
    """Seconds the container may run: the attempt's, less a margin to report on it ourselves."""
    return max(0.0, ctx.remaining_seconds() - reserve_for(ctx))


def _emitter(loop: asyncio.AbstractEventLoop, put: Callable[[Log], None]) -> Callable[[Log], None]:
    def emit(update: Log) -> None:
        loop.call_soon_threadsafe(put, update)

    return emit


def _write_stdin(raw: socket.socket, payload: bytes) -> None:
    try:
        raw.sendall(payload)
        raw.shutdown(socket.SHUT_WR)
    except OSError:  # the container exited (or was killed) without reading it all
        pass


def _read_exactly(raw: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = raw.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frames(
    raw: socket.socket,
    out: _Streams,
    max_output: int,
    pids: PidsWatch,
    emit: Callable[[Log], None],
) -> None:
    """Demultiplex the attach stream: stdout collected (capped), stderr lines emitted as logs."""
    pending = b""
    try:
        while True:
            header = _read_exactly(raw, 8)
            if header is None:
                break
            stream, size = struct.unpack(">BxxxL", header)
            payload = _read_exactly(raw, size) if size else b""
            if payload is None:
                break
            pids.poll()
            if stream == _STDOUT:
                if len(out.stdout) + len(payload) > max_output:
                    out.stdout_overflow = True
                    out.stdout += payload[: max(0, max_output - len(out.stdout))]
                else:
                    out.stdout += payload
            elif stream == _STDERR:
                pending += payload
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _log_line(out, line, emit)
    except OSError as exc:
        out.error = str(exc)
    finally:
        if pending:
            _log_line(out, pending, emit)
        with contextlib.suppress(OSError):
            raw.close()


def _log_line(out: _Streams, line: bytes, emit: Callable[[Log], None]) -> None:
    text = line.decode("utf-8", "replace").rstrip("\r")
    if not text:
        return
    out.last_stderr = text
    if out.log_bytes >= MAX_LOG_BYTES:
        return
    out.log_bytes += len(line)
    if out.log_bytes >= MAX_LOG_BYTES:
        emit(Log(f"(stderr beyond {MAX_LOG_BYTES} bytes is not logged)", "warning"))
        return
    emit(Log(text))


def _wait_state(engine: DockerEngine, container_id: str) -> dict[str, Any]:
    engine.api.wait(container_id, timeout=30)
    return engine.state(container_id)


def classify(
    spec: ContainerSpec,
    state: dict[str, Any],
    streams: _Streams,
    pids_hit: bool,
    timed_out: bool,
    budget: float,
) -> Result | Failure:
    """The attempt's outcome from how the container ended."""
    code = int(state.get("ExitCode", -1))
    pids_note = f"; it also hit its process limit of {spec.limits.pids}" if pids_hit else ""
    if timed_out:
        return Failure(
            ExecutionError(
                "timeout",
                f"container ran past its time limit of {budget:.3g}s and was killed{pids_note}",
                retryable=True,
            ),
            timed_out=True,
        )
    if state.get("OOMKilled"):
        return Failure.of(
            "oom_killed",
            f"container exceeded its memory limit of {spec.limits.memory_mb} MiB and was killed",
        )
    if code != 0 and pids_hit:
        return Failure.of(
            "pids_limit",
            f"container hit its process limit of {spec.limits.pids} (a fork was refused) "
            f"and exited with code {code}: {streams.last_stderr}".rstrip(": "),
        )
    if streams.stdout_overflow:
        return Failure.of("output_too_large", f"container wrote more than {spec.max_output_bytes} bytes on stdout")
    text = bytes(streams.stdout).decode("utf-8", "replace").strip()
    if code != 0:
        chosen = _declared_error(text)
        if chosen is not None:
            return chosen
        if code == 137 or code == 143:
            return Failure.of("killed", f"container was killed (exit code {code})", retryable=True)
        detail = f": {streams.last_stderr}" if streams.last_stderr else ""
        return Failure.of("exit_code", f"container exited with code {code}{detail}", retryable=code == EXIT_TEMPFAIL)
    if not text:
        return Result(None)
    try:
        return Result(json.loads(text))
    except ValueError as exc:
        return Failure.of("invalid_output", f"container stdout is not JSON ({exc}): {text[:200]!r}")


def _declared_error(text: str) -> Failure | None:
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("error"), dict):
        return None
    err = doc["error"]
    return Failure.of(
        str(err.get("type") or "handler_error"),
        str(err.get("message") or ""),
        retryable=bool(err.get("retryable", False)),
        stack=str(err.get("stack") or ""),
    )


__all__ = ["EXIT_TEMPFAIL", "OneShot", "classify", "stdin_document"]
