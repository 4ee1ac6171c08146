"""Collects what a guest writes to fd 1 and fd 2, within caps, as it writes it.

WASI output callbacks may run on a wasmtime I/O thread rather than on the thread
running the guest, so everything here only appends under a lock and never blocks.
Caps are enforced while bytes arrive: a guest printing gigabytes costs its own
time budget, never host memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from neoactions.sandboxes.wasm.config import Limits
from neoactions.sandboxes.wasm.guest import FRAME
from neoactions.server.runners import Log

LEVELS = frozenset({"debug", "info", "warning", "error"})

#: raw fd 2 kept to explain a failure that produced no error frame
STDERR_TAIL_BYTES = 8 * 1024


class _Lines:
    """Splits a byte stream into lines, keeping at most ``max_line`` bytes of each."""

    def __init__(self, on_line: Callable[[bytes, bool], None], max_line: int) -> None:
        self._on_line = on_line
        self._max = max_line
        self._buf = bytearray()
        self._cut = False

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._append(data[start:])
                return
            self._append(data[start:end])
            self._flush()
            start = end + 1

    def close(self) -> None:
        if self._buf or self._cut:
            self._flush()

    def _append(self, chunk: bytes) -> None:
        if self._cut or not chunk:
            return
        room = self._max - len(self._buf)
        if len(chunk) > room:
            self._buf += chunk[:room]
            self._cut = True
        else:
            self._buf += chunk

    def _flush(self) -> None:
        line, cut = bytes(self._buf), self._cut
        self._buf.clear()
        self._cut = False
        self._on_line(line, cut)


class GuestOutput:
    """The guest's result, error and logs, decoded from its output streams."""

    def __init__(self, limits: Limits, emit: Callable[[Log], None], *, framed: bool) -> None:
        self._limits = limits
        self._emit = emit
        self._framed = framed
        self._lock = threading.Lock()
        self._log_budget = limits.log_bytes
        self._logs_cut = False
        #: the JSON result as text (framed) or the whole stdout (raw module)
        self.result: bytes | None = None
        #: ``{type, message, stack}`` reported by the harness
        self.error: dict[str, Any] | None = None
        #: the result was larger than ``limits.output_bytes``
        self.output_overflow = False
        self.stderr_tail = bytearray()
        self._raw_stdout = bytearray()
        line_cap = max(limits.log_bytes, 256)
        self._out: _Lines | None
        if framed:
            self._out = _Lines(self._raw_line("info"), line_cap)
            # a result frame may be as large as the output cap, plus its tag
            self._err = _Lines(self._frame_line, limits.output_bytes + len(FRAME) + 1)
        else:
            self._out = None
            self._err = _Lines(self._raw_line("info"), line_cap)

    # --- WASI callbacks (any thread) -------------------------------------

    def stdout(self, data: bytes) -> None:
        with self._lock:
            if self._out is not None:
                self._out.feed(data)
                return
            room = self._limits.output_bytes - len(self._raw_stdout)
            if len(data) > room:
                self.output_overflow = True
                data = data[: max(room, 0)]
            self._raw_stdout += data

    def stderr(self, data: bytes) -> None:
        with self._lock:
            self._err.feed(data)

    def close(self) -> None:
        """The guest has stopped: flush partial lines."""
        with self._lock:
            if self._out is not None:
                self._out.close()
            self._err.close()
            if not self._framed and not self.output_overflow:
                self.result = bytes(self._raw_stdout)

    # --- decoding ---------------------------------------------------------

    def _raw_line(self, level: str) -> Callable[[bytes, bool], None]:
        def on_line(line: bytes, cut: bool) -> None:
            self._log(level, line.decode("utf-8", "replace") + (" [line cut]" if cut else ""))

        return on_line

    def _frame_line(self, line: bytes, cut: bool) -> None:
        if not line.startswith(FRAME) or len(line) < 2:
            self.stderr_tail += line[:STDERR_TAIL_BYTES] + b"\n"
            del self.stderr_tail[:-STDERR_TAIL_BYTES]
            if line.strip():
                self._log("error", line.decode("utf-8", "replace"))
            return
        tag, payload = line[1:2], line[2:]
        if tag == b"R":
            self.result, self.output_overflow = (None, True) if cut else (payload, False)
        elif tag == b"E":
            self.error = _decode_error(payload)
        elif tag == b"L":
            level, message = _decode_log(payload, cut)
            self._log(level, message)

    def _log(self, level: str, message: str) -> None:
        if self._logs_cut:
            return
        size = len(message.encode("utf-8", "replace"))
        if size > self._log_budget:
            self._logs_cut = True
            self._emit(Log(f"log output cut: more than {self._limits.log_bytes} bytes", "warning"))
            return
        self._log_budget -= size
        self._emit(Log(message, level))


def _decode_log(payload: bytes, cut: bool) -> tuple[str, str]:
    if not cut:
        try:
            level, message = json.loads(payload)
            if level in LEVELS and isinstance(message, str):
                return level, message
        except ValueError:
            pass
    return "info", payload.decode("utf-8", "replace") + (" [line cut]" if cut else "")


def _decode_error(payload: bytes) -> dict[str, Any]:
    try:
        error = json.loads(payload)
    except ValueError:
        error = None
    if not isinstance(error, dict):
        return {"type": "Error", "message": payload.decode("utf-8", "replace")[:4096], "stack": ""}
    return {
        "type": str(error.get("type") or "Error"),
        "message": str(error.get("message", "")),
        "stack": str(error.get("stack", "")),
    }


__all__ = ["GuestOutput"]
