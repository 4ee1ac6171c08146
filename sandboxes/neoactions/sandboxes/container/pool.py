"""Sidecar mode: warm containers serving the Handler protocol, pooled per image and settings.

Each container listens on a unix socket in a host directory bind-mounted at
``/run/neoactions`` (``NEOACTIONS_HANDLER_ADDRESS=unix:/run/neoactions/handler.sock``),
so containers without a network are reachable too. A container serves one
execution at a time; a pool holds at most ``max_size`` of them, started on
demand, and removes those idle longer than ``idle_seconds``. Idle containers are
health-checked (``Check``) by :meth:`SidecarPool.maintain` and before reuse
after a pause; a dead or unhealthy one is removed and a fresh one takes its
place. A container whose attempt timed out, was cancelled or lost its
connection is removed rather than reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neoactions.domain.model import JSON
from neoactions.sandboxes.container.config import ContainerSpec
from neoactions.sandboxes.container.engine import (
    ContainerError,
    DockerEngine,
    PidsWatch,
    new_name,
    prepare_socket_dir,
)
from neoactions.sandboxes.fairshare import FairSlots
from neoactions.sandboxes.sidecar.client import HandlerClient, reserve_for
from neoactions.server.runners import ExecutionContext, Failure, Result, RunnerUpdate

#: where the socket directory is mounted inside a sidecar container
CONTAINER_SOCKET_DIR = "/run/neoactions"
SOCKET_NAME = "handler.sock"

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Member:
    """One warm container."""

    id: str
    name: str
    socket_dir: Path
    client: HandlerClient
    pids: PidsWatch
    created: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    executions: int = 0


class PoolTimeout(Exception):
    """No container of the pool became free before the deadline."""


class SidecarPool:
    """Warm sidecar containers for one (image, settings) pair."""

    def __init__(
        self,
        engine: DockerEngine,
        spec: ContainerSpec,
        image: str,
        *,
        socket_root: Path,
        start_timeout: float = 30.0,
        recheck_after: float = 1.0,
    ) -> None:
        self.engine = engine
        self.spec = spec
        self.image = image
        self.socket_root = socket_root
        self.start_timeout = start_timeout
        self.recheck_after = recheck_after
        self.max_size = spec.pool_max_size
        #: executions of each tenant on the pool's containers (see :meth:`execute`)
        self.shares = FairSlots(self.max_size)
        self.idle_seconds = spec.pool_idle_seconds
        self._idle: list[Member] = []
        self._busy: set[Member] = set()
        self._starting = 0
        self._changed = asyncio.Condition()
        self._destroying: set[asyncio.Future[None]] = set()
        self.started = 0
        self.replaced = 0

    @property
    def size(self) -> int:
        return len(self._idle) + len(self._busy) + self._starting

    def members(self) -> list[Member]:
        return [*self._idle, *self._busy]

    # -- leasing ------------------------------------------------------------------

    async def acquire(self, within: float) -> Member:
        """A healthy container for one execution, started if needed and there is room."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while True:
            member: Member | None = None
            async with self._changed:
                while True:
                    if self._idle:
                        member = self._idle.pop()  # most recently used: the rest can expire
                        self._busy.add(member)
                        break
                    if self.size < self.max_size:
                        self._starting += 1
                        break
                    left = end - loop.time()
                    if left <= 0:
                        raise PoolTimeout(f"all {self.max_size} sidecar containers of {self.image} stayed busy")
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):  # (wait_for can lose a cancellation on 3.11)
                            await self._changed.wait()
            if member is None:
                return await self._start_reserved(max(0.05, end - loop.time()))
            if time.monotonic() - member.last_used < self.recheck_after:
                return member
            ok, why = await member.client.check(max(0.05, min(2.0, end - loop.time())))
            if ok:
                return member
            log.info("sidecar %s failed its check (%s): replacing it", member.name, why)
            self.replaced += 1
            await self._drop(member)

    async def release(self, member: Member) -> None:
        """Back to the idle list, ready for the next execution."""
        member.last_used = time.monotonic()
        member.executions += 1
        async with self._changed:
            self._busy.discard(member)
            self._idle.append(member)
            self._changed.notify()

    async def discard(self, member: Member) -> None:
        """Remove a container that must not be reused."""
        await self._drop(member)

    async def _drop(self, member: Member) -> None:
        """Out of the pool now; the container is removed in the background (close() waits)."""
        async with self._changed:
            self._busy.discard(member)
            with contextlib.suppress(ValueError):
                self._idle.remove(member)
            self._changed.notify()
        task = asyncio.ensure_future(self._destroy(member))
        self._destroying.add(task)
        task.add_done_callback(self._destroying.discard)

    # -- lifecycle ----------------------------------------------------------------

    async def _start_reserved(self, within: float) -> Member:
        try:
            member = await self._start(within)
        except BaseException:
            async with self._changed:
                self._starting -= 1
                self._changed.notify()
            raise
        async with self._changed:
            self._starting -= 1
            self._busy.add(member)
        self.started += 1
        return member

    async def _start(self, within: float) -> Member:
        engine = self.engine
        name = new_name("neoactions-sidecar")
        socket_dir = self.socket_root / name
        await engine.call(prepare_socket_dir, socket_dir, self.spec.numeric_user())
        client: HandlerClient | None = None
        # shielded: a cancelled start must not lose track of a container being created
        launch = asyncio.ensure_future(engine.call(self._launch, name, socket_dir))
        try:
            container_id = await asyncio.shield(launch)
            pids = PidsWatch.open(container_id)
            client = HandlerClient(f"unix:{socket_dir / SOCKET_NAME}", detailed_errors=True)
            await self._wait_ready(container_id, socket_dir, client, min(within, self.start_timeout))
        except BaseException:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
            engine.remove_soon(name, after=launch, then=functools.partial(shutil.rmtree, socket_dir, True))
            raise
        return Member(container_id, name, socket_dir, client, pids)

    def _launch(self, name: str, socket_dir: Path) -> str:
        """Create and start a sidecar container serving on a socket in ``socket_dir``. Blocking."""
        engine = self.engine
        container_id = engine.create(
            self.spec,
            self.image,
            name,
            env={"NEOACTIONS_HANDLER_ADDRESS": f"unix:{CONTAINER_SOCKET_DIR}/{SOCKET_NAME}"},
            binds={str(socket_dir): {"bind": CONTAINER_SOCKET_DIR, "mode": "rw"}},
            labels={"dev.neoactions.role": "sidecar"},
        )
        engine.api.start(container_id)
        return container_id

    async def _wait_ready(self, container_id: str, socket_dir: Path, client: HandlerClient, within: float) -> None:
        """Until ``Check`` says SERVING; fails early when the container exits."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        socket_path = socket_dir / SOCKET_NAME
        polls = 0
        why = "its socket never appeared"
        while loop.time() < end:
            polls += 1
            if await self.engine.call(socket_path.exists):
                ok, why = await client.check(max(0.05, min(1.0, end - loop.time())))
                if ok:
                    return
            if polls % 5 == 0:
                state = await self.engine.call(self.engine.state, container_id)
                if not state.get("Running"):
                    tail = await self.engine.call(self.engine.logs_tail, container_id)
                    raise ContainerError(
                        "sidecar_start_failed",
                        f"sidecar container exited with code {state.get('ExitCode')} while starting"
                        + (f": {tail}" if tail else ""),
                        retryable=False,
                    )
            await asyncio.sleep(0.02 if polls < 50 else 0.1)
        raise ContainerError(
            "sidecar_start_failed",
            f"sidecar container of {self.image} did not serve within {within:.1f}s ({why})",
            retryable=True,
        )

    def _state_after_exit(self, container_id: str, within: float) -> dict[str, Any]:
        """The container's state once it exited (a broken connection comes before docker knows)."""
        if within > 0:
            with contextlib.suppress(ContainerError):
                self.engine.invoke(self.engine.api.wait, container_id, timeout=within)
        return self.engine.state(container_id)

    async def _destroy(self, member: Member) -> None:
        member.pids.close()
        with contextlib.suppress(Exception):
            await member.client.close()
        cleanup = functools.partial(shutil.rmtree, member.socket_dir, True)
        await asyncio.shield(self.engine.remove_soon(member.name, then=cleanup))

    async def maintain(self) -> None:
        """One pass: remove expired idle containers and those failing their health check."""
        now = time.monotonic()
        async with self._changed:
            expired = [m for m in self._idle if now - m.last_used > self.idle_seconds]
            for m in expired:
                self._idle.remove(m)
            to_check = list(self._idle)
        for m in expired:
            log.info("sidecar %s idle for %.0fs: removing it", m.name, now - m.last_used)
            await self._destroy(m)
        for m in to_check:
            ok, why = await m.client.check(2.0)
            if ok:
                continue
            async with self._changed:
                if m not in self._idle:  # taken meanwhile: its lease will find out
                    continue
                self._idle.remove(m)
                self._changed.notify()
            log.info("sidecar %s failed its health check (%s): removing it", m.name, why)
            self.replaced += 1
            await self._destroy(m)

    async def close(self) -> None:
        async with self._changed:
            members = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
        await asyncio.gather(*(self._destroy(m) for m in members), *list(self._destroying), return_exceptions=True)

    # -- executing ----------------------------------------------------------------

    async def execute(self, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        """One attempt on a warm container; the container is reused only after a clean end.

        Tenants waiting for one of the pool's containers take turns (round robin),
        so a tenant with many queued executions does not go first every time. No
        container is held back for other tenants: a pool's size is the action's
        own ``pool.max_size``, and holding one back would halve a lone tenant's
        default pool of two.
        """
        try:
            async with asyncio.timeout(ctx.remaining_seconds()):
                await self.shares.acquire(ctx.tenant)
        except TimeoutError:
            message = f"all {self.max_size} sidecar containers of {self.image} stayed busy until the deadline"
            yield Failure(Failure.of("timeout", message, retryable=True).error, timed_out=True)
            return
        try:
            async for update in self._execute(data, ctx):
                yield update
        finally:
            self.shares.release(ctx.tenant)

    async def _execute(self, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        budget = ctx.remaining_seconds()
        try:
            member = await self.acquire(budget)
        except PoolTimeout as exc:
            yield Failure(
                Failure.of("timeout", f"{exc} until the deadline", retryable=True).error,
                timed_out=True,
            )
            return
        except ContainerError as exc:
            yield Failure.of(exc.type, exc.message, retryable=exc.retryable)
            return
        clean = False
        try:
            outcome: Result | Failure | None = None
            async for update in member.client.execute(self.spec.handler_config, data, ctx, reserve=reserve_for(ctx)):
                if isinstance(update, Result | Failure):
                    outcome = update
                    break
                yield update
            if outcome is None:  # the client always ends with one; be defensive
                outcome = Failure.of("protocol_error", "no outcome from the sidecar", retryable=True)
            if isinstance(outcome, Failure) and _broken(outcome):
                outcome = await self._explain(member, outcome)
            else:
                clean = True
            yield outcome
        finally:
            if clean:
                await self.release(member)
            else:
                await self._drop(member)

    async def _explain(self, member: Member, failure: Failure) -> Failure:
        """A lost connection or timeout, explained by how the container ended."""
        try:
            state = await self.engine.call(self._state_after_exit, member.id, 0.0 if failure.timed_out else 2.0)
        except ContainerError:
            return failure
        member.pids.poll()
        if state.get("OOMKilled"):
            return Failure.of(
                "oom_killed",
                f"sidecar container exceeded its memory limit of {self.spec.limits.memory_mb} MiB and was killed",
            )
        if failure.timed_out:
            note = " (it had hit its process limit)" if member.pids.hit else ""
            return Failure(
                Failure.of(
                    "timeout",
                    f"{failure.error.message}; the sidecar container was killed{note}",
                    retryable=True,
                ).error,
                timed_out=True,
            )
        if member.pids.hit:
            return Failure.of(
                "pids_limit",
                f"sidecar container hit its process limit of {self.spec.limits.pids}: {failure.error.message}",
            )
        if not state.get("Running"):
            return Failure.of(
                "sidecar_exited",
                f"sidecar container exited with code {state.get('ExitCode')} during the attempt",
                retryable=True,
            )
        return failure


def _broken(failure: Failure) -> bool:
    """A failure of the transport or the clock, not one the handler reported."""
    return failure.timed_out or failure.error.type in {
        "handler_unavailable",
        "protocol_error",
        "grpc_cancelled",
        "grpc_internal",
        "grpc_unknown",
    }


def pool_stats(pools: dict[Any, SidecarPool]) -> dict[str, int]:
    return {
        "pools": len(pools),
        "containers": sum(p.size for p in pools.values()),
        "started": sum(p.started for p in pools.values()),
        "replaced": sum(p.replaced for p in pools.values()),
    }


__all__ = ["CONTAINER_SOCKET_DIR", "SOCKET_NAME", "Member", "PoolTimeout", "SidecarPool", "pool_stats"]
