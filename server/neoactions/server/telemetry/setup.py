"""Turning observability on for a serving process: tracing from the ``OTEL_*`` variables,
metrics on the metrics port, the gRPC server span, the engine's gauges and the alert loop.
``app.running`` owns one :class:`Observability`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from neoactions.server.queue import BANDS
from neoactions.server.settings import Settings
from neoactions.server.telemetry import metrics, tracing
from neoactions.server.telemetry.alerts import AlertLoop
from neoactions.server.telemetry.health import Thresholds

if TYPE_CHECKING:
    from neoactions.server.engine import Engine

log = logging.getLogger(__name__)

#: how often the work queue's depth and pending entries are read (metrics on, Redis queue)
QUEUE_SAMPLE_SECONDS = 15.0


class Observability:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics_port = 0
        self._owns_tracing = False
        self._owns_metrics = False
        self._tasks: list[asyncio.Task[None]] = []
        self.alerts: AlertLoop | None = None

    def start(self) -> None:
        """Tracing (when an exporter is configured) and metrics (when a port is set). A bad
        ``OTEL_*`` value raises ``ValueError`` naming it."""
        s = self.settings
        if not tracing.state.enabled:
            self._owns_tracing = tracing.configure_from_environment(role=s.role) is not None
        if s.metrics_port >= 0 and not metrics.state.enabled:
            self.metrics_port = metrics.serve(
                s.metrics_host, s.metrics_port, s.metrics_action_labels, s.metrics_max_actions
            )
            self._owns_metrics = True
            log.info("metrics at http://%s:%d/metrics", s.metrics_host, self.metrics_port)

    def interceptors(self) -> list[Any]:
        """The gRPC server interceptors observability needs (none when tracing is off)."""
        if not tracing.state.enabled:
            return []
        from neoactions.server.telemetry.interceptor import TracingInterceptor

        return [TracingInterceptor()]

    def watch(self, engine: Engine) -> None:
        """Read the engine's gauges at each scrape and start the alert loop."""
        s = self.settings
        if metrics.state.enabled:
            dispatcher = engine.dispatcher
            workers = float(s.concurrency)
            metrics.state.probes.update(
                {
                    "neoactions.executions.in_flight": lambda: [(float(dispatcher.in_flight()), {})],
                    "neoactions.dispatcher.waiting": lambda: [(float(dispatcher.waiting()), {})],
                    "neoactions.dispatcher.workers": lambda: [(workers, {})],
                }
            )
            if hasattr(engine.queue, "stream"):
                self._tasks.append(asyncio.create_task(_sample_queue(engine), name="queue-metrics"))
            if hasattr(engine.flow, "_breakers"):
                self._tasks.append(asyncio.create_task(_sample_breakers(engine), name="breaker-metrics"))
        if s.alerts_interval_seconds > 0:
            self.alerts = AlertLoop(
                engine.store,
                lambda tenant, events: engine.publisher.publish(tenant, events),
                engine.tenant_slugs,
                Thresholds.from_settings(s),
                s.alerts_interval_seconds,
            )
            self._tasks.append(asyncio.create_task(self.alerts.run(), name="action-health"))

    async def stop_loops(self) -> None:
        """Stop the alert loop and the samplers (before the engine and the store close)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def aclose(self) -> None:
        await self.stop_loops()
        if self._owns_metrics:
            metrics.uninstall()
        if self._owns_tracing:
            tracing.uninstall()  # flushes what is buffered


async def _sample_queue(engine: Engine) -> None:
    """The Redis work queue's undelivered (lag) and unacknowledged (pending) entries per tenant."""
    queue: Any = engine.queue
    while True:
        with contextlib.suppress(Exception):  # a metric must never stop the service
            tenants = await engine.tenant_slugs()
            streams = [(t, b, queue.stream(t, b)) for t in tenants for b in BANDS]
            pipe = queue._r.pipeline(transaction=False)
            for _, _, stream in streams:
                pipe.xinfo_groups(stream)
            replies = await pipe.execute(raise_on_error=False)
            depth: dict[str, float] = {}
            pending: dict[str, float] = {}
            for (tenant, _, _), reply in zip(streams, replies, strict=True):
                if isinstance(reply, Exception):
                    continue
                for group in reply:
                    depth[tenant] = depth.get(tenant, 0.0) + float(group.get("lag") or 0)
                    pending[tenant] = pending.get(tenant, 0.0) + float(group.get("pending") or 0)
            for tenant in tenants:
                metrics.set_gauge("neoactions.queue.depth", depth.get(tenant, 0.0), tenant=tenant)
                metrics.set_gauge("neoactions.queue.pending", pending.get(tenant, 0.0), tenant=tenant)
        await asyncio.sleep(QUEUE_SAMPLE_SECONDS)


#: breaker states as gauge values
_BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
#: breakers (targets) reported at most
MAX_BREAKERS = 100


def _kept(targets: set[str]) -> Callable[[dict[str, str]], bool]:
    return lambda labels: labels.get("target", "") in targets


async def _sample_breakers(engine: Engine) -> None:
    """The state of this process's circuit breakers (in-process flow control), per target."""
    flow: Any = engine.flow
    while True:
        with contextlib.suppress(Exception):  # a metric must never stop the service
            targets = sorted(flow._breakers)[:MAX_BREAKERS]
            metrics.clear_gauge("neoactions.breaker.state", _kept(set(targets)))
            for target in targets:
                state = await flow.breaker_state(target)
                metrics.set_gauge("neoactions.breaker.state", _BREAKER_VALUES.get(str(state), 0.0), target=target)
        await asyncio.sleep(QUEUE_SAMPLE_SECONDS)


__all__ = ["Observability"]
