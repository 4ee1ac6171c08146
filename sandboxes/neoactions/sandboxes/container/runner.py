"""The ``container`` runner (see the package docstring)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import JSON, JSONObject
from neoactions.sandboxes.container.config import CONFIG_SCHEMA, ContainerSpec, validate
from neoactions.sandboxes.container.engine import ContainerError, DockerEngine
from neoactions.sandboxes.container.oneshot import OneShot
from neoactions.sandboxes.container.pool import SidecarPool, pool_stats
from neoactions.sandboxes.fairshare import FairSlots, default_tenant_share
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    RunnerUpdate,
)
from neoactions.server.telemetry.runs import traced_run

log = logging.getLogger(__name__)


class ContainerRunner:
    """Runs actions in Docker containers: one-shot, or on warm sidecar containers.

    Settings (all optional): ``docker_base_url``; ``container_threads`` (docker
    API threads, 16); ``container_max_concurrency`` (one-shot containers running
    at once, 16); ``container_tenant_concurrency`` (of those, how many one
    tenant may run at once, 12; waiting tenants take turns, see
    :mod:`neoactions.sandboxes.fairshare`); ``container_labels`` (extra labels on every container, added to
    those of ``$NEOACTIONS_CONTAINER_LABELS``, ``k=v,k2=v2``);
    ``container_socket_dir`` (host directory of sidecar sockets);
    ``container_health_interval`` (seconds between idle health checks, 10);
    ``container_start_timeout`` (seconds a sidecar may take to serve, 30).
    """

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        s = dict(settings or {})
        self.engine = DockerEngine(
            base_url=s.get("docker_base_url") or None,
            threads=int(s.get("container_threads", 16)),
            labels=dict(s.get("container_labels") or {}),
        )
        self.max_concurrency = int(s.get("container_max_concurrency", 16))
        tenant = s.get("container_tenant_concurrency")
        self.tenant_concurrency = int(tenant) if tenant else default_tenant_share(self.max_concurrency)
        # two threads per running one-shot container: its stdin writer and its stdout/stderr reader
        self._streams = concurrent.futures.ThreadPoolExecutor(
            2 * self.max_concurrency, thread_name_prefix="container-stdio"
        )
        self._oneshot = OneShot(self.engine, self._streams)
        self.socket_root = Path(s.get("container_socket_dir") or Path(tempfile.gettempdir()) / "neoactions-sidecars")
        self.health_interval = float(s.get("container_health_interval", 10.0))
        self.start_timeout = float(s.get("container_start_timeout", 30.0))
        self._slots: dict[int, FairSlots] = {}
        self._pools: dict[tuple[Any, ...], SidecarPool] = {}
        self._maintainers: dict[int, asyncio.Task[None]] = {}

    def validate(self, config: JSONObject) -> None:
        validate(config)

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        """One run in a container (a ``container run`` span under the attempt when tracing is on)."""
        async for update in traced_run("container run", ctx, {}, lambda c: self._execute(config, data, c)):
            yield update

    async def _execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        try:
            spec = ContainerSpec.from_config(config)
        except InvalidArgument as exc:  # saved before the checks were stricter, or rendered into one
            yield Failure.of("invalid_config", exc.message)
            return
        try:
            image = await self.engine.resolve_image(spec)
        except ContainerError as exc:
            yield Failure.of(exc.type, exc.message, retryable=exc.retryable)
            return
        if spec.mode == "sidecar":
            async for update in self.pool(spec, image, ctx.tenant).execute(data, ctx):
                yield update
            return
        slots = self._slots_for_loop()
        try:
            async with asyncio.timeout(ctx.remaining_seconds()):  # (wait_for can lose a cancellation on 3.11)
                await slots.acquire(ctx.tenant)
        except TimeoutError:
            yield Failure(
                Failure.of(
                    "timeout",
                    f"no container slot free (max {self.max_concurrency}) before the deadline",
                    retryable=True,
                ).error,
                timed_out=True,
            )
            return
        try:
            async for update in self._oneshot.run(spec, image, data, ctx):
                yield update
        finally:
            slots.release(ctx.tenant)

    def _slots_for_loop(self) -> FairSlots:
        key = id(asyncio.get_running_loop())
        if key not in self._slots:
            self._slots[key] = FairSlots(self.max_concurrency, self.tenant_concurrency)
        return self._slots[key]

    def pool(self, spec: ContainerSpec, image: str, tenant: str) -> SidecarPool:
        """The warm pool of ``tenant`` for this image and these settings (of the running loop).
        Tenants never share warm containers: a handler's in-memory state stays its tenant's."""
        loop_id = id(asyncio.get_running_loop())
        key = (loop_id, tenant, *spec.pool_key(image))
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = SidecarPool(
                self.engine,
                spec,
                image,
                socket_root=self.socket_root,
                start_timeout=self.start_timeout,
            )
            if loop_id not in self._maintainers:
                self._maintainers[loop_id] = asyncio.ensure_future(self._maintain(loop_id))
        return pool

    def pools(self) -> list[SidecarPool]:
        loop_id = id(asyncio.get_running_loop())
        return [p for k, p in self._pools.items() if k[0] == loop_id]

    def stats(self) -> dict[str, int]:
        return pool_stats(self._pools)

    async def maintain(self) -> None:
        """One health/expiry pass over the running loop's pools."""
        for pool in self.pools():
            try:
                await pool.maintain()
            except ContainerError as exc:
                log.warning("sidecar pool of %s: %s", pool.image, exc.message)

    async def _maintain(self, loop_id: int) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            await self.maintain()

    async def aclose(self) -> None:
        """Stop health checks, remove every warm container, then anything else of ours."""
        loop_id = id(asyncio.get_running_loop())
        for lid, task in list(self._maintainers.items()):
            task.cancel()
            if lid == loop_id:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._maintainers.clear()
        here = [p for k, p in self._pools.items() if k[0] == loop_id]
        self._pools.clear()
        await asyncio.gather(*(p.close() for p in here), return_exceptions=True)
        await self.engine.aclose()
        self._streams.shutdown(wait=False, cancel_futures=True)


def register(registry: HandlerRegistry) -> None:
    """Entry point of the built-in ``container`` handler type."""
    runner = ContainerRunner(registry.settings)
    registry.register(
        HandlerType(
            name="container",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="Docker containers: one-shot (stdin JSON -> stdout JSON) or warm sidecars "
            "serving the Handler protocol; hardened and resource-limited",
            validate=runner.validate,
            close=runner.aclose,
        )
    )


__all__ = ["ContainerRunner", "register"]
