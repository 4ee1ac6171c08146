"""Metrics: OpenTelemetry instruments, exposed for Prometheus on ``--metrics-port`` at ``/metrics``.

Names follow Prometheus conventions once exported (``neoactions_executions_total``,
``neoactions_attempt_duration_seconds``...). Labels are bounded: tenant, handler type,
status/outcome; the action's name only when the operator allows it
(``metrics_action_labels``), and then at most ``metrics_max_actions`` distinct names per
process (the rest are counted as ``other``). Off unless a metrics port is set: the engine's
hooks read :data:`state` first and return at once.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from neoactions.domain.model import Attempt, Execution

SCOPE = "neoactions"
#: seconds: from a millisecond to a minute
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: the label an action's name is replaced by beyond the cap (or when action labels are off)
OTHER = "other"


class LocalCounter:
    """A monotonic counter kept in the process by label values (one dict update per add: the
    SDK's synchronous counter costs ~7 µs a call), reported as an OpenTelemetry
    ``ObservableCounter`` (cumulative) at each collection."""

    def __init__(self, meter: Meter, name: str, unit: str, description: str, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.values: dict[tuple[str, ...], float] = {}
        meter.create_observable_counter(name, callbacks=[self._observe], unit=unit, description=description)

    def add(self, amount: float, labels: tuple[str, ...]) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, dict(zip(self.keys, k, strict=True))) for k, v in list(self.values.items())]


class LocalHistogram:
    """Bucket counts kept in the process by label values (a bisect and three increments per
    record), exposed in the ``/metrics`` registry as a Prometheus histogram. (The SDK's
    synchronous histogram costs ~7 µs a record: with three per execution it was most of the
    cost of metrics.)"""

    def __init__(self, name: str, description: str, keys: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name, self.description, self.keys, self.bounds = name, description, keys, bounds
        #: labels → [count of each bucket (the last: +Inf)..., sum, count]
        self.series: dict[tuple[str, ...], list[float]] = {}

    def record(self, value: float, labels: tuple[str, ...]) -> None:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0.0] * (len(self.bounds) + 3)
        s[bisect_left(self.bounds, value)] += 1
        s[-2] += value
        s[-1] += 1

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.description, labels=list(self.keys))
        for labels, s in list(self.series.items()):
            counts, running, buckets = list(s), 0.0, []
            for bound, n in zip([*map(str, self.bounds), "+Inf"], counts[: len(self.bounds) + 1], strict=True):
                running += n
                buckets.append((bound, running))
            family.add_metric(list(labels), buckets, counts[-2])
        yield family


class Instruments:
    """The service's instruments, made once per process."""

    def __init__(self, meter: Meter, action_labels: bool = False, max_actions: int = 100) -> None:
        self._action_labels = action_labels
        self._max_actions = max_actions
        self._actions: set[str] = set()
        self._lock = threading.Lock()
        by = ("tenant", "handler_type", "action") if action_labels else ("tenant", "handler_type")
        self.events_published = LocalCounter(
            meter, "neoactions.events.published", "{event}", "Events accepted (duplicates not counted)", ("tenant",)
        )
        self.executions = LocalCounter(
            meter,
            "neoactions.executions",
            "{execution}",
            "Executions that reached a final status, by status and handler type",
            (*by, "status"),
        )
        self.retries = LocalCounter(
            meter, "neoactions.retries", "{retry}", "Retries scheduled after a failed attempt", by
        )
        self.attempt_duration = LocalHistogram(
            "neoactions_attempt_duration_seconds",
            "Duration of attempts, by handler type and outcome",
            (*by, "outcome"),
            SECONDS_BUCKETS,
        )
        self.start_latency = LocalHistogram(
            "neoactions_execution_start_latency_seconds",
            "From an execution's creation (its event's publish) to its first attempt's start",
            ("tenant", "handler_type"),
            SECONDS_BUCKETS,
        )
        self.matching_duration = LocalHistogram(
            "neoactions_matching_duration_seconds",
            "Matching one event against its tenant's actions",
            ("tenant",),
            SECONDS_BUCKETS,
        )
        self.histograms = (self.attempt_duration, self.start_latency, self.matching_duration)

    @property
    def action_labels(self) -> bool:
        return self._action_labels

    def action(self, name: str) -> str:
        """The label of action ``name``: itself while under the cap, else ``other``."""
        if not self._action_labels or not name:
            return OTHER if self._action_labels else ""
        if name in self._actions:
            return name
        with self._lock:
            if len(self._actions) < self._max_actions:
                self._actions.add(name)
                return name
        return OTHER

    def by(self, ex: Execution) -> tuple[str, ...]:
        """The execution's labels: tenant, handler type[, action]."""
        if self._action_labels:
            return (ex.tenant, ex.handler_type, self.action(ex.action_name))
        return (ex.tenant, ex.handler_type)


class _Histograms:
    """The local histograms as a Prometheus collector of the ``/metrics`` registry."""

    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments

    def collect(self) -> Iterable[Any]:
        for h in self._instruments.histograms:
            yield from h.collect()


@dataclass(slots=True)
class MetricsState:
    enabled: bool = False
    instruments: Instruments | None = None
    provider: Any = None
    #: gauges' current values, set by the engine's observers: {gauge name: {labels tuple: value}}
    gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = field(default_factory=dict)
    server: Any = None
    #: gauges read from the engine at each scrape: {gauge name: reader of [(value, labels)]}
    probes: dict[str, Callable[[], list[tuple[float, dict[str, str]]]]] = field(default_factory=dict)


state = MetricsState()

#: the gauges, each read when scraped: name → (unit, description)
GAUGES = {
    "neoactions.executions.in_flight": ("{execution}", "Attempts running in this process now"),
    "neoactions.dispatcher.waiting": ("{execution}", "Leased executions waiting here for a worker"),
    "neoactions.dispatcher.workers": ("{worker}", "Workers of this process (its runner pool)"),
    "neoactions.queue.depth": ("{message}", "Entries of the work queue not yet delivered, per stream"),
    "neoactions.queue.pending": ("{message}", "Entries delivered to consumers and not yet acknowledged"),
    "neoactions.dead_letters": ("{execution}", "Dead-lettered executions in the health window, per tenant"),
    "neoactions.action.health": ("1", "Health of an action: 0 healthy, 1 degraded, 2 critical"),
    "neoactions.breaker.state": ("1", "Circuit breaker of a target: 0 closed, 1 half-open, 2 open"),
}


def set_gauge(name: str, value: float, **labels: str) -> None:
    """Record the current value of gauge ``name`` for ``labels`` (read at the next scrape)."""
    state.gauges.setdefault(name, {})[tuple(sorted(labels.items()))] = value


def clear_gauge(name: str, keep: Callable[[dict[str, str]], bool]) -> None:
    series = state.gauges.get(name, {})
    for key in [k for k in series if not keep(dict(k))]:
        del series[key]


def _reader(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        out = [Observation(value, dict(labels)) for labels, value in list(state.gauges.get(name, {}).items())]
        probe = state.probes.get(name)
        if probe is not None:
            out += [Observation(value, labels) for value, labels in probe()]
        return out

    return observe


def install(
    meter_provider: Any, action_labels: bool = False, max_actions: int = 100, registry: CollectorRegistry | None = None
) -> Instruments:
    """Make the instruments with ``meter_provider`` (the histograms in ``registry``, the one
    its Prometheus reader fills) and turn the hooks on."""
    meter = meter_provider.get_meter(SCOPE)
    instruments = Instruments(meter, action_labels, max_actions)
    if registry is not None:
        registry.register(_Histograms(instruments))
    for name, (unit, description) in GAUGES.items():
        meter.create_observable_gauge(name, callbacks=[_reader(name)], unit=unit, description=description)
    state.instruments, state.provider, state.enabled = instruments, meter_provider, True
    return instruments


def uninstall() -> None:
    provider = state.provider
    state.enabled, state.instruments, state.provider = False, None, None
    state.gauges.clear()
    state.probes.clear()
    if state.server is not None:
        server, state.server = state.server, None
        server.shutdown()
        server.server_close()
    if provider is not None:
        provider.shutdown()


def prometheus_provider(registry: CollectorRegistry | None = None) -> tuple[Any, CollectorRegistry]:
    """A meter provider whose metrics a Prometheus registry exposes (its own, unless given)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    registry = registry if registry is not None else CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, scope_info_enabled=False, registry=registry)
    return MeterProvider(metric_readers=[reader]), registry


def serve(host: str, port: int, action_labels: bool = False, max_actions: int = 100) -> int:
    """Expose the metrics at ``http://host:port/metrics`` (a thread of its own); returns the
    port listened on (``port`` 0 picks a free one)."""
    from prometheus_client import start_http_server

    provider, registry = prometheus_provider()
    install(provider, action_labels, max_actions, registry)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    state.server = server
    return int(server.server_address[1])


# --- the engine's hooks (each returns at once when metrics are off) ----------------------------


def published(tenant: str, count: int) -> None:
    if count and state.instruments is not None:
        state.instruments.events_published.add(count, (tenant,))


def matching(tenant: str, seconds: float) -> None:
    if state.instruments is not None:
        state.instruments.matching_duration.record(seconds, (tenant,))


def attempt_started(ex: Execution, attempt: Attempt) -> None:
    """The first attempt of an execution started: how long after its creation."""
    i = state.instruments
    if i is not None and attempt.number == 1:
        latency = (attempt.started_at - ex.created_at).total_seconds()
        i.start_latency.record(max(0.0, latency), (ex.tenant, ex.handler_type))


def attempt_finished(ex: Execution, attempt: Attempt, status: str, final: bool) -> None:
    """An attempt ended with the execution now in ``status`` (final or ``scheduled``/``waiting``)."""
    i = state.instruments
    if i is None:
        return
    by = i.by(ex)
    if attempt.finished_at is not None:
        seconds = (attempt.finished_at - attempt.started_at).total_seconds()
        i.attempt_duration.record(max(0.0, seconds), (*by, attempt.status.value))
    if final:
        i.executions.add(1, (*by, status))
    elif status == "scheduled":
        i.retries.add(1, by)


def execution_ended(ex: Execution, status: str) -> None:
    """An execution became final without an attempt ending (cancelled, dead-lettered by the dispatcher)."""
    i = state.instruments
    if i is not None:
        i.executions.add(1, (*i.by(ex), status))


__all__ = [
    "GAUGES",
    "OTHER",
    "Instruments",
    "LocalCounter",
    "LocalHistogram",
    "MetricsState",
    "attempt_finished",
    "attempt_started",
    "clear_gauge",
    "execution_ended",
    "install",
    "matching",
    "prometheus_provider",
    "published",
    "serve",
    "set_gauge",
    "state",
    "uninstall",
]
