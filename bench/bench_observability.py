"""The cost of observability: end-to-end throughput with tracing (100 % sampled, exported)
and metrics on, against both off, in one run.

Method: the embedded pipeline of ``bench_pipeline`` (a real ``python -m neoactions.server``
on a SQLite data dir, one ``python`` no-op action, a separate publisher process over gRPC
``PublishEvents``: warm-up, a fixed-rate latency phase, then ``BENCH_EVENTS`` events as fast
as the server takes them), in ``BENCH_OBS_ROUNDS`` rounds of four legs each, alternating the
order so load drift on the shared machine hits all of them:

- **off**: no ``OTEL_*`` variables, no metrics port — the hooks return at once;
- **on**: ``OTEL_TRACES_EXPORTER=otlp`` to a loopback OTLP receiver in this process (a gRPC
  server that counts the spans it is sent), ``OTEL_TRACES_SAMPLER=always_on``, a batch
  queue large enough to drop nothing; metrics on a port (``NEOACTIONS_METRICS_PORT=0``)
  with action labels (recorded on every publish, match and attempt; not scraped during the
  run). The spans are encoded and sent by the server's export child process (the default);
- **on-thread**: as **on** with ``NEOACTIONS_OTLP_EXPORT_PROCESS=false``: the SDK's batch
  processor encodes and sends on a thread of the server process (the former way);
- **sampled**: as **on**, but ``OTEL_TRACES_SAMPLER=traceidratio`` with ``0.1``.

CPU: the server process and its child processes (the export child included), from ``/proc``
at the start and the end of the throughput phase; the end waits until the receiver has had
every span (no span for 1.5 s; the same wait in the **off** leg), so the export of the
phase's spans is counted. Reported per leg: actions/s (median of the rounds), CPU per 1,000
actions (all, and the server process alone), p50/p99 publish → handler start, and the
ratios to **off**. The receiver's own CPU (a thread of this process) is not counted, but it
runs on the same cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import bench.bench_pipeline as pipeline
from bench._procs import SqliteProbe, load_average
from bench.bench_pipeline import Run, _pipeline

ROUNDS = int(os.environ.get("BENCH_OBS_ROUNDS", "2"))


class _Counter(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            self.spans += n
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[_Counter, str]]:
    counter = _Counter()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield counter, f"http://127.0.0.1:{port}"
    finally:
        server.stop(None)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: how long the receiver must see no span before the export counts as drained
QUIET_SECONDS = 1.5


class _DrainingProbe(SqliteProbe):
    """Final executions counted, then waits until the receiver has had every span."""

    def __init__(self, data: Path, counter: _Counter) -> None:
        super().__init__(data)
        self._counter = counter

    async def wait_final(self, total: int, within: float) -> int:
        final = await super().wait_final(total, within)
        seen, quiet_since, give_up = -1, time.monotonic(), time.monotonic() + 60
        while time.monotonic() < give_up:
            if self._counter.spans != seen:
                seen, quiet_since = self._counter.spans, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                break
            await asyncio.sleep(0.1)
        return final


class _CpuSplit:
    """Records the ``/proc`` CPU readings ``_pipeline`` takes, per process: the server process
    (the first one read) apart from its children (the export child among them)."""

    def __init__(self) -> None:
        self.readings: dict[int, list[float]] = {}
        self.first = 0
        self._read: Any = getattr(pipeline, "cpu_seconds")  # noqa: B009

    def __call__(self, pid: int) -> float:
        value = float(self._read(pid))
        self.first = self.first or pid
        self.readings.setdefault(pid, []).append(value)
        return value

    def server_only(self) -> float:
        values = self.readings.get(self.first, [0.0])
        return values[-1] - values[0]


async def _leg(tmp: Path, name: str, leg: str, endpoint: str, counter: _Counter) -> tuple[Run, float]:
    data = tmp / f"{name}-data"
    probe = _DrainingProbe(data, counter)
    env: dict[str, str] = {}
    settings: dict[str, str] = {}
    if leg != "off":
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "traceidratio" if leg == "sampled" else "always_on",
            "OTEL_TRACES_SAMPLER_ARG": "0.1" if leg == "sampled" else "1.0",
            "OTEL_BSP_MAX_QUEUE_SIZE": "200000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "NEOACTIONS_OTLP_EXPORT_PROCESS": "false" if leg == "on-thread" else "true",
        }
        settings = {"metrics_port": "0", "metrics_action_labels": "true"}
    split = _CpuSplit()
    setattr(pipeline, "cpu_seconds", split)  # noqa: B010 - the readings _pipeline takes, recorded
    try:
        with _environ(env):
            run = await _pipeline(name, str(data), probe, tmp, **settings)  # type: ignore[arg-type]
    finally:
        setattr(pipeline, "cpu_seconds", split._read)  # noqa: B010
        await probe.close()
    return run, (split.server_only() / run.actions * 1000 if run.actions else 0.0)


def main() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="neoactions-bench-observability-"))
    legs = tuple(os.environ.get("BENCH_OBS_LEGS", "off,on,on-thread,sampled").split(","))
    runs: dict[str, list[Run]] = {leg: [] for leg in legs}
    alone: dict[str, list[float]] = {leg: [] for leg in legs}
    exported: dict[str, list[int]] = {leg: [] for leg in legs}
    loads = [f"start {load_average()}"]
    started = time.monotonic()
    with _receiver() as (counter, endpoint):
        for i in range(ROUNDS):
            order = legs if i % 2 == 0 else tuple(reversed(legs))
            for leg in order:
                before = counter.spans
                run, server_cpu = asyncio.run(_leg(tmp, f"{leg}-{i}", leg, endpoint, counter))
                runs[leg].append(run)
                alone[leg].append(server_cpu)
                exported[leg].append(counter.spans - before)
            loads.append(f"after round {i + 1} {load_average()}")
        spans = counter.spans

    def med(leg: str, pick: Any) -> float:
        values = [pick(r) for r in runs.get(leg, []) if r.actions]
        return statistics.median(values) if values else 0.0

    def med_alone(leg: str) -> float:
        return statistics.median(alone[leg]) if alone.get(leg) else 0.0

    off_rate, off_cpu, off_alone = (
        med("off", lambda r: r.per_second),
        med("off", lambda r: r.cpu_per_1000),
        med_alone("off"),
    )

    def ratio(value: float, base: float) -> str:
        return f"{value / base:.2f}" if base else "-"

    rows = []
    for leg in legs:
        p50 = med(leg, lambda r: r.latency_ms.get("p50", 0.0))
        p99 = med(leg, lambda r: r.latency_ms.get("p99", 0.0))
        rate, cpu, own = med(leg, lambda r: r.per_second), med(leg, lambda r: r.cpu_per_1000), med_alone(leg)
        rows.append(
            f"| {leg} | {rate:,.0f} | {ratio(rate, off_rate)} | {cpu:.3f} | {ratio(cpu, off_cpu)} | {own:.3f} "
            f"| {ratio(own, off_alone)} | {p50:.1f} | {p99:.1f} |"
        )
    each = ", ".join(f"{leg} {[round(r.per_second) for r in runs[leg]]}" for leg in legs)
    each_cpu = ", ".join(f"{leg} {[round(r.cpu_per_1000, 3) for r in runs[leg]]}" for leg in legs)
    notes = [n for leg in runs.values() for r in leg for n in r.notes]
    return "\n".join(
        [
            f"rounds: {ROUNDS} (alternating order); every round's actions/s: {each}",
            f"every round's CPU s / 1,000 actions (server and children): {each_cpu}",
            "",
            "| leg | actions/s | vs off | CPU s / 1,000 actions (server + children) | vs off "
            "| server process alone | vs off | p50 start ms | p99 start ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"spans the receiver got: {spans:,}; per leg and round: {exported}",
            f"load average: {'; '.join(loads)}; {time.monotonic() - started:.0f} s",
            *(f"note: {n}" for n in notes),
        ]
    )


if __name__ == "__main__":
    print(main())
