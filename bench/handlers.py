"""No-op python handlers for the end-to-end benchmark (``bench.handlers:noop``).

Imported by the server under test (``bench`` is put on its ``PYTHONPATH``). ``noop``
is an ``async`` function, so the python runner calls it on the event loop (no thread
hop). It records ``(seq, time.time())`` at its start — a list append, flushed to the
file named by ``NEOACTIONS_BENCH_STARTS`` plus ``.PID`` when the server process exits
(a server may be several processes) — so the
benchmark can correlate publish and start times by the event's ``seq``.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

_starts: list[tuple[int, float]] = []


async def noop(config: dict[str, Any], data: dict[str, Any], ctx: Any) -> None:
    _starts.append((data.get("seq", -1), time.time()))


async def soak(config: dict[str, Any], data: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The soak's python handler: keeps nothing (``noop``'s start times would grow the
    server's memory for the whole soak)."""
    return {"n": data.get("n")}


@atexit.register
def _flush() -> None:
    path = os.environ.get("NEOACTIONS_BENCH_STARTS")
    if path and _starts:
        with open(f"{path}.{os.getpid()}", "w") as f:
            f.writelines(f"{seq} {t:.6f}\n" for seq, t in _starts)
