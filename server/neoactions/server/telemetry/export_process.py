"""OTLP export from a helper process: the serving process's spans are encoded and sent by a
child process, not by a thread of the serving process.

The OpenTelemetry SDK's ``BatchSpanProcessor`` encodes spans into OTLP protobuf in pure Python
on a thread of the process that made them (~25 µs of CPU per span), and that thread holds the
interpreter lock the event loop needs: at 100 % sampling about half of the cost of tracing.
:class:`ExportProcess` (a ``SpanProcessor``) only queues the ended spans; a thread of its own
turns each batch into plain tuples and writes it, pickled, to the standard input of a child
process (``python -m neoactions.server.telemetry.export_process``), which rebuilds the spans
and hands them to the SDK's own ``BatchSpanProcessor`` and ``OTLPSpanExporter``, configured
there by the same ``OTEL_*`` variables (endpoint, headers, TLS, compression, timeouts,
``OTEL_BSP_*``). The CPU of the encoding is spent all the same, in the child.

Frames on the pipe: 4-byte big-endian length, then a pickle: ``("spans", [tuple, ...])`` or
``("flush", n)`` (the child flushes and writes the byte ``n`` back on its standard output).
End of input: the child exports what it holds and exits.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
#: spans per frame at most (a frame is pickled and written at once)
FRAME_SPANS = 2048


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
        dict(span.attributes) if span.attributes else None,
        [(e.name, e.timestamp, dict(e.attributes) if e.attributes else None) for e in span.events] or None,
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
    """Queues ended (sampled) spans and ships them in batches to the export child process.

    ``max_queue_size``/``schedule_delay_s``/``max_batch``: as the batch processor's
    ``OTEL_BSP_*`` settings (spans beyond a full queue are dropped and counted)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        resource: Mapping[str, Any],
        max_queue_size: int = 2048,
        schedule_delay_s: float = 5.0,
        max_batch: int = 512,
    ) -> None:
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._max_queue = max_queue_size
        self._delay = schedule_delay_s
        self._batch = max_batch
        self.dropped = 0
        self._awake = threading.Event()
        self._lock = threading.Lock()  # one writer on the pipe at a time
        self._closed = False
        self._dead = False
        self._pid = os.getpid()
        env = {**os.environ, **environ}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "neoactions.server.telemetry.export_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        self._to: IO[bytes] = self._child.stdin
        self._back: IO[bytes] = self._child.stdout
        self._write(("resource", dict(resource)))
        self._thread = threading.Thread(target=self._run, name="neoactions-span-shipper", daemon=True)
        self._thread.start()
        os.register_at_fork(after_in_child=self._forked)

    @property
    def child_pid(self) -> int:
        return self._child.pid

    # --- SpanProcessor --------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._closed or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self._max_queue:
            self.dropped += 1
            return
        queue.append(span)
        if len(queue) >= self._batch and not self._awake.is_set():
            self._awake.set()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._awake.set()
        self._thread.join(30)
        self._ship()
        with self._lock:
            if not self._dead and os.getpid() == self._pid:
                try:
                    self._to.close()  # end of input: the child exports what it holds and exits
                    self._child.wait(30)
                except (OSError, subprocess.TimeoutExpired):
                    self._child.kill()
        if self.dropped:
            log.warning("tracing: %d spans dropped (the export queue was full)", self.dropped)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._closed or self._dead:
            return False
        self._ship()
        with self._lock:
            if not self._send(("flush", 1)):
                return False
            try:
                return self._back.read(1) == b"\x01"
            except OSError:
                return False

    # --- shipping ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._awake.wait(self._delay)
            self._awake.clear()
            self._ship()

    def _ship(self) -> None:
        queue = self._queue
        while queue and not self._dead:
            batch: list[tuple[Any, ...]] = []
            try:
                while len(batch) < FRAME_SPANS:
                    batch.append(_as_tuple(queue.popleft()))
            except IndexError:  # emptied (by this thread, or a flush racing it)
                pass
            if batch:
                self._write(("spans", batch))

    def _write(self, message: tuple[str, Any]) -> None:
        with self._lock:
            self._send(message)

    def _send(self, message: tuple[str, Any]) -> bool:
        if self._dead or os.getpid() != self._pid:
            return False
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._to.write(_HEADER.pack(len(data)))
            self._to.write(data)
            self._to.flush()
            return True
        except OSError as exc:
            self._dead = True
            log.warning("tracing: the span export process is gone (%s); spans are no longer exported", exc)
            return False

    def _forked(self) -> None:
        # a forked child must not write into its parent's pipe
        self._dead, self._closed = True, True
        self._queue = collections.deque()


# --- the child ----------------------------------------------------------------------------------


def _rebuild(values: Sequence[Any], resource: Any, scopes: dict[Any, Any]) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    (name, trace_id, span_id, flags, state, parent_id, parent_remote, kind, start, end) = values[:10]
    attributes, events, links, code, description, scope_key = values[10:]
    trace_state = TraceState.from_header([state]) if state else None
    scope = scopes.get(scope_key)
    if scope is None and scope_key is not None:
        scope = scopes[scope_key] = InstrumentationScope(*scope_key)
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, False, TraceFlags(flags), trace_state),
        parent=SpanContext(trace_id, parent_id, parent_remote, TraceFlags(flags), trace_state) if parent_id else None,
        resource=resource,
        attributes=attributes,
        events=[Event(n, a, t) for n, t, a in events] if events else (),
        links=[Link(SpanContext(t, s, True, TraceFlags(f)), a) for t, s, f, a in links] if links else (),
        kind=SpanKind(kind),
        status=Status(StatusCode(code), description),
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
    """Read frames from standard input into a ``BatchSpanProcessor(OTLPSpanExporter())``."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    processor = BatchSpanProcessor(OTLPSpanExporter())
    resource = Resource.create({})
    scopes: dict[Any, Any] = {}
    try:
        while True:
            try:
                (size,) = _HEADER.unpack(_read(source, _HEADER.size))
                kind, body = pickle.loads(_read(source, size))
            except EOFError:
                break
            if kind == "spans":
                for values in body:
                    processor.on_end(_rebuild(values, resource, scopes))
            elif kind == "resource":
                resource = Resource(body)
            elif kind == "flush":
                processor.force_flush()
                answers.write(bytes([body]))
                answers.flush()
    finally:
        processor.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    child_main()


__all__ = ["ExportProcess", "child_main"]
