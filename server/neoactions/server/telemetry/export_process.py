"""OTLP export from a helper process: the serving process's spans are encoded and sent by a
child process, not by a thread of the serving process.

The OpenTelemetry SDK's ``BatchSpanProcessor`` encodes spans into OTLP protobuf in pure Python
(~25 µs of CPU per span) on a thread of the process that made them, and that thread holds the
interpreter lock the event loop needs: at 100 % sampling about half of what tracing cost.
:class:`ExportProcess` (a ``SpanProcessor``) turns each ended span into a plain tuple and
writes batches of them, pickled, to the standard input of a child process
(``python -m neoactions.server.telemetry.export_process``), which rebuilds the spans and
exports each batch with the SDK's own ``OTLPSpanExporter``, configured there by the same
``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, TLS, compression, timeout). Batch
size, queue size and schedule (``OTEL_BSP_*``) apply in the serving process. The CPU of the
encoding is spent all the same, in the child (and the hand-over costs ~6 µs per span more).

Frames on the pipe: 4-byte big-endian length, then a pickle: ``("resource", attributes)``,
``("spans", [tuple, ...])`` or ``("flush", n)`` (the child writes the byte ``n`` back on its
standard output once every earlier frame is exported). End of input: the child exits.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import IO, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
#: the pipe's capacity asked for (Linux; the default is 64 KiB, a frame of 512 spans ~55 KiB)
PIPE_BYTES = 1 << 20


def _plain(attributes: Any) -> dict[str, Any] | None:
    """A span's attributes as a plain dict (``copy`` of the SDK's bounded mapping is its
    dict's copy: ~0.1 µs against ~1 µs through the mapping protocol)."""
    if not attributes:
        return None
    try:
        copied = attributes.copy()
    except AttributeError:
        return dict(attributes)
    return copied if type(copied) is dict else dict(attributes)


def _as_tuple(span: ReadableSpan) -> tuple[Any, ...]:
    ctx = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    status = span.status
    return (
        span.name,
        ctx.trace_id,
        ctx.span_id,
        int(ctx.trace_flags),
        ctx.trace_state.to_header() if ctx.trace_state else "",
        parent.span_id if parent is not None else 0,
        parent.is_remote if parent is not None else False,
        span.kind.value,
        span.start_time,
        span.end_time,
        _plain(span.attributes),
        [(e.name, e.timestamp, _plain(e.attributes)) for e in span.events] or None,
        [
            (link.context.trace_id, link.context.span_id, int(link.context.trace_flags), dict(link.attributes or {}))
            for link in span.links
        ]
        or None,
        status.status_code.value,
        status.description,
        (scope.name, scope.version, scope.schema_url) if scope is not None else None,
    )


class ExportProcess(SpanProcessor):
    """Ships ended (sampled) spans in batches to the export child process.

    ``max_queue_size``/``schedule_delay_s``/``max_batch``: as the SDK batch processor's
    ``OTEL_BSP_*`` settings. An ended span becomes a tuple at once (in the thread that ended
    it); every ``max_batch`` of them are pickled and written to the child's pipe, which is
    non-blocking: what the child has not taken yet waits in a buffer of at most
    ``max_queue_size`` spans, beyond which spans are dropped and counted. A thread only
    writes out what is left every ``schedule_delay_s`` (no contention for the interpreter
    lock while spans are being made)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        resource: Mapping[str, Any],
        max_queue_size: int = 2048,
        schedule_delay_s: float = 5.0,
        max_batch: int = 512,
    ) -> None:
        self._batch = max(1, min(max_batch, max_queue_size))
        self._max_waiting = max_queue_size
        self._delay = schedule_delay_s
        self._spans: list[tuple[Any, ...]] = []
        self._pending = bytearray()  # frames written in part or not yet
        self._waiting = 0  # spans in self._pending
        self._frames: collections.deque[tuple[int, int]] = collections.deque()  # (end offset, spans) per frame
        self.dropped = 0
        self._lock = threading.Lock()
        self._awake = threading.Event()
        self._closed = False
        self._dead = False
        self._pid = os.getpid()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "neoactions.server.telemetry.export_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **environ},
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        self._to: IO[bytes] = self._child.stdin
        self._back: IO[bytes] = self._child.stdout
        self._fd = self._to.fileno()
        with contextlib.suppress(OSError, AttributeError):  # a larger pipe: fewer partial writes (Linux)
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(self._fd, False)
        with self._lock:
            self._frame(("resource", dict(resource)), 0)
            self._drain()
        self._thread = threading.Thread(target=self._run, name="neoactions-span-shipper", daemon=True)
        self._thread.start()
        forked = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (method := forked()) is not None and method())

    @property
    def child_pid(self) -> int:
        return self._child.pid

    # --- SpanProcessor --------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed or not span.context.trace_flags.sampled:
            return
        values = _as_tuple(span)
        with self._lock:
            spans = self._spans
            spans.append(values)
            if len(spans) >= self._batch:
                self._ship()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._awake.set()
        self._thread.join(30)
        if os.getpid() == self._pid and not self._dead:
            with self._lock:
                self._ship()
                self._drain(wait=30.0)
                with contextlib.suppress(OSError):
                    self._to.close()  # end of input: the child exports what it holds and exits
            try:
                self._child.wait(30)
            except subprocess.TimeoutExpired:
                self._child.kill()
        if self.dropped:
            log.warning("tracing: %d spans dropped (the export queue was full)", self.dropped)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._closed or self._dead:
            return False
        with self._lock:
            self._ship()
            self._frame(("flush", 1), 0)
            if not self._drain(wait=timeout_millis / 1000):
                return False
            try:
                return self._back.read(1) == b"\x01"
            except OSError:
                return False

    # --- shipping (under self._lock) --------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._awake.wait(self._delay if not self._pending else min(self._delay, 0.05))
            if self._closed:
                break
            with self._lock:
                self._ship()

    def _ship(self) -> None:
        """Frame the spans gathered so far and write out what the pipe takes."""
        spans = self._spans
        if spans:
            self._spans = []
            if self._waiting + len(spans) > self._max_waiting:
                self.dropped += len(spans)  # the child is behind: the queue is full
            else:
                self._frame(("spans", spans), len(spans))
        self._drain()

    def _frame(self, message: tuple[str, Any], spans: int) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending += _HEADER.pack(len(data))
        self._pending += data
        self._waiting += spans
        self._frames.append((len(self._pending), spans))

    def _drain(self, wait: float = 0.0) -> bool:
        """Write pending frames (``wait`` seconds at most for the child to take them all)."""
        give_up = time.monotonic() + wait
        while self._pending and not self._dead:
            if os.getpid() != self._pid:
                return False
            try:
                written = os.write(self._fd, self._pending)
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    return False
                time.sleep(0.005)
                continue
            except OSError as exc:
                self._dead = True
                self._pending.clear()
                log.warning("tracing: the span export process is gone (%s); spans are no longer exported", exc)
                return False
            del self._pending[:written]
            frames = self._frames
            while frames and frames[0][0] <= written:
                self._waiting -= frames.popleft()[1]
            self._frames = collections.deque((end - written, n) for end, n in frames)
        return not self._pending

    def _forked(self) -> None:
        # a forked child must not write into its parent's pipe
        self._dead, self._closed = True, True
        self._spans, self._pending = [], bytearray()


# --- the child ----------------------------------------------------------------------------------


class _Rebuilder:
    """Spans back from tuples, with the values they share made once."""

    def __init__(self) -> None:
        from opentelemetry.sdk.resources import Resource

        class _Resource(Resource):
            # the OTLP encoder groups spans by resource, hashing it per span: the SDK's hash
            # serialises the attributes to JSON each time (~5 µs); this one is computed once
            def __init__(self, attributes: Mapping[str, Any]) -> None:
                super().__init__(dict(attributes))
                self._hash = super().__hash__()

            def __hash__(self) -> int:
                return self._hash

        self._resource_type = _Resource
        self.resource: Any = _Resource({})
        self._scopes: dict[Any, Any] = {}
        self._statuses: dict[tuple[int, str | None], Any] = {}
        self._flags: dict[int, Any] = {}

    def set_resource(self, attributes: Mapping[str, Any]) -> None:
        self.resource = self._resource_type(attributes)

    def span(self, values: Sequence[Any]) -> ReadableSpan:
        from opentelemetry.sdk.trace import Event
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

        (name, trace_id, span_id, flags, state, parent_id, parent_remote, kind, start, end) = values[:10]
        attributes, events, links, code, description, scope_key = values[10:]
        trace_state = TraceState.from_header([state]) if state else None
        trace_flags = self._flags.get(flags)
        if trace_flags is None:
            trace_flags = self._flags[flags] = TraceFlags(flags)
        scope = self._scopes.get(scope_key)
        if scope is None and scope_key is not None:
            scope = self._scopes[scope_key] = InstrumentationScope(*scope_key)
        status = self._statuses.get((code, description))
        if status is None:
            status = self._statuses[(code, description)] = Status(StatusCode(code), description)
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, False, trace_flags, trace_state),
            parent=SpanContext(trace_id, parent_id, parent_remote, trace_flags, trace_state) if parent_id else None,
            resource=self.resource,
            attributes=attributes,
            events=[Event(n, a, t) for n, t, a in events] if events else (),
            links=[Link(SpanContext(t, s, True, TraceFlags(f)), a) for t, s, f, a in links] if links else (),
            kind=SpanKind(kind),
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=scope,
        )


def _read(stream: IO[bytes], n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def child_main() -> None:
    """Read frames from standard input; each frame of spans is one ``OTLPSpanExporter.export``
    (the batching, the queue and the schedule are the serving process's)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    exporter = OTLPSpanExporter()
    rebuild = _Rebuilder()
    try:
        while True:
            try:
                (size,) = _HEADER.unpack(_read(source, _HEADER.size))
                kind, body = pickle.loads(_read(source, size))
            except EOFError:
                break
            if kind == "spans":
                try:
                    exporter.export([rebuild.span(values) for values in body])
                except Exception:  # an export that fails loses its batch, never the process
                    log.exception("tracing: exporting %d spans failed", len(body))
            elif kind == "resource":
                rebuild.set_resource(body)
            elif kind == "flush":
                answers.write(bytes([body]))
                answers.flush()
    finally:
        exporter.shutdown()


if __name__ == "__main__":
    child_main()


__all__ = ["ExportProcess", "child_main"]
