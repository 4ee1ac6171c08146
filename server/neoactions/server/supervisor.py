"""Several server processes on one port (``processes`` > 1).

One Python process runs on one core. To use the others, the supervisor starts
``processes`` copies of the whole service; each binds the same port with
``SO_REUSEPORT`` (the kernel spreads incoming connections over them) and runs its own
engine on the shared PostgreSQL store, so what one process accepted it also runs, and
what it leaves behind (a crash, a shutdown cut short) another takes over through the
leases. Limits must hold across the processes, which is why flow control has to be
shared (``redis_url``) — settings refuse more than one process without it.

The supervisor prints ``neoactions listening on HOST:PORT`` once every process
serves. A process that dies is started again (it is logged); one that cannot start,
or that keeps dying, stops the whole group. SIGTERM/SIGINT stop every process
gracefully, each within ``shutdown_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from typing import Any

from neoactions.server.settings import Settings
from neoactions.server.startup import StartupError, port_free, port_taken, prepare_database

log = logging.getLogger("neoactions.supervisor")

#: this many unexpected exits within ``_RESTART_WINDOW`` seconds stop the whole group
_MAX_RESTARTS = 5
_RESTART_WINDOW = 60.0
_START_TIMEOUT = 120.0
#: extra time a stopping process gets beyond its own grace period before it is killed
_KILL_MARGIN = 15.0
_PR_SET_PDEATHSIG = 1
#: how long a process that did not stop gets to log its tasks before it is killed
_DUMP_SECONDS = 1.0


def supervise(settings: Settings) -> int:
    """Run ``settings.processes`` servers until a signal; returns the exit status."""
    try:
        _check(settings)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # once, not once per process
        return 1
    group = _Group(settings)
    stop: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stop.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        if not group.start_all(lambda: bool(stop)):
            return 1
        if not stop:
            where = f"{settings.host}:{settings.port}"
            print(f"neoactions listening on {where} ({settings.processes} processes)", flush=True)
        while not stop:
            if not group.watch(timeout=1.0):
                return 1
        log.info("stopping %d processes", len(group.processes))
        return 0
    finally:
        group.stop_all()


class _Group:
    def __init__(self, settings: Settings) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._count = settings.processes
        self._settings = dataclasses.replace(settings, processes=1)
        self._ready: multiprocessing.Queue[int] = self._ctx.Queue()
        self.processes: list[SpawnProcess] = []
        self._exits: deque[float] = deque()

    def _spawn(self, index: int) -> SpawnProcess:
        proc = self._ctx.Process(
            target=_child, args=(self._settings, index, self._ready), name=f"neoactions-{index}", daemon=False
        )
        proc.start()
        return proc

    def start_all(self, stopping: Callable[[], bool]) -> bool:
        """Start every process and wait until each serves; ``False`` if one could not."""
        self.processes = [self._spawn(i) for i in range(self._count)]
        waiting = set(range(len(self.processes)))
        deadline = time.monotonic() + _START_TIMEOUT
        while waiting and not stopping():
            try:
                waiting.discard(self._ready.get(timeout=0.2))
                continue
            except queue.Empty:
                pass
            for i in waiting:
                if not self.processes[i].is_alive():
                    log.error("server process %d exited (status %s) before it served", i, self.processes[i].exitcode)
                    return False
            if time.monotonic() > deadline:
                log.error("server processes %s did not serve within %gs", sorted(waiting), _START_TIMEOUT)
                return False
        return True

    def watch(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a process to die and start it again; ``False`` when
        processes keep dying (the group stops)."""
        sentinels = [p.sentinel for p in self.processes]
        for sentinel in multiprocessing.connection.wait(sentinels, timeout):
            i = sentinels.index(sentinel)  # type: ignore[arg-type]
            dead = self.processes[i]
            now = time.monotonic()
            self._exits.append(now)
            while self._exits and now - self._exits[0] > _RESTART_WINDOW:
                self._exits.popleft()
            if len(self._exits) > _MAX_RESTARTS:
                log.error("server processes exited %d times within %gs: stopping", len(self._exits), _RESTART_WINDOW)
                return False
            log.error("server process %d (pid %s) exited with status %s: starting it again", i, dead.pid, dead.exitcode)
            self.processes[i] = self._spawn(i)
        with contextlib.suppress(queue.Empty):
            while True:
                self._ready.get_nowait()  # a restarted process serves again
        return True

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: a graceful stop
        deadline = time.monotonic() + self._settings.shutdown_grace_seconds + _KILL_MARGIN
        for proc in self.processes:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive() and proc.pid is not None:
                log.error("server process %s did not stop in time: logging its tasks, then killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGUSR1)  # app.log_tasks
                proc.join(_DUMP_SECONDS)
                proc.kill()
                proc.join()
        self._ready.close()
        self._ready.join_thread()


def _check(settings: Settings) -> None:
    """What would stop every process from starting, found before any is started."""
    if not port_free(settings.host, settings.port):
        raise port_taken(settings.host, settings.port)
    asyncio.run(prepare_database(settings.database_url))


def _child(settings: Settings, index: int, ready: multiprocessing.Queue[int]) -> None:
    """One server of the group: dies with the supervisor, reports when it serves."""
    _die_with_parent()
    from neoactions.server.app import run

    if settings.metrics_port > 0:  # each process serves its own metrics: port, port + 1, ...
        settings.metrics_port += index
    run(settings, reuse_port=True, on_ready=lambda _settings, _port: ready.put(index))


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


__all__ = ["supervise"]
