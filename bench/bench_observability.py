"""The cost of observability: end-to-end throughput with tracing (100 % sampled, exported)
and metrics on, against both off, in one run.

Method: the embedded pipeline of ``bench_pipeline`` (a real ``python -m neoactions.server``
on a SQLite data dir, one ``python`` no-op action, a separate publisher process over gRPC
``PublishEvents``: warm-up, a fixed-rate latency phase, then ``BENCH_EVENTS`` events as fast
as the server takes them), in ``BENCH_OBS_ROUNDS`` rounds of two legs each, alternating which
leg goes first so load drift on the shared machine hits both:

- **off**: no ``OTEL_*`` variables, no metrics port — the hooks return at once;
- **sampled**: as **on**, but ``OTEL_TRACES_SAMPLER=traceidratio`` with ``0.1`` (a tenth of
  the traces recorded and exported; metrics as in **on**);
- **on**: ``OTEL_TRACES_EXPORTER=otlp`` to a loopback OTLP receiver in this process (a gRPC
  server that counts the spans it is sent), ``OTEL_TRACES_SAMPLER=always_on``, a batch
  queue large enough to drop nothing; metrics on a port (``NEOACTIONS_METRICS_PORT=0``)
  with action labels (recorded on every publish, match and attempt; not scraped during the run).

Reported per leg: actions/s (median of the rounds), server CPU per 1,000 actions, p50/p99
publish → handler start, and the spans the receiver got; the ratio on/off.
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
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)
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


async def _leg(tmp: Path, name: str, leg: str, endpoint: str) -> Run:
    data = tmp / f"{name}-data"
    probe = SqliteProbe(data)
    env: dict[str, str] = {}
    settings: dict[str, str] = {}
    if leg != "off":
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "always_on" if leg == "on" else "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "1.0" if leg == "on" else "0.1",
            "OTEL_BSP_MAX_QUEUE_SIZE": "200000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        }
        settings = {"metrics_port": "0", "metrics_action_labels": "true"}
    try:
        with _environ(env):
            return await _pipeline(name, str(data), probe, tmp, **settings)
    finally:
        await probe.close()


def main() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="neoactions-bench-observability-"))
    legs = ("off", "on", "sampled")
    runs: dict[str, list[Run]] = {leg: [] for leg in legs}
    loads = [f"start {load_average()}"]
    started = time.monotonic()
    with _receiver() as (counter, endpoint):
        for i in range(ROUNDS):
            order = legs if i % 2 == 0 else tuple(reversed(legs))
            for leg in order:
                runs[leg].append(asyncio.run(_leg(tmp, f"{leg}-{i}", leg, endpoint)))
            loads.append(f"after round {i + 1} {load_average()}")
        spans = counter.spans

    def med(leg: str, pick: Any) -> float:
        values = [pick(r) for r in runs[leg] if r.actions]
        return statistics.median(values) if values else 0.0

    rows = []
    for leg in legs:
        p50 = med(leg, lambda r: r.latency_ms.get("p50", 0.0))
        p99 = med(leg, lambda r: r.latency_ms.get("p99", 0.0))
        rate, cpu = med(leg, lambda r: r.per_second), med(leg, lambda r: r.cpu_per_1000)
        rows.append(f"| {leg} | {rate:,.0f} | {cpu:.2f} | {p50:.1f} | {p99:.1f} |")
    off, on = med("off", lambda r: r.per_second), med("on", lambda r: r.per_second)
    sampled = med("sampled", lambda r: r.per_second)
    cpu_off, cpu_on = med("off", lambda r: r.cpu_per_1000), med("on", lambda r: r.cpu_per_1000)
    each = ", ".join(f"{leg} {[round(r.per_second) for r in runs[leg]]}" for leg in legs)
    notes = [n for leg in runs.values() for r in leg for n in r.notes]
    summary = "no throughput measured"
    if off and cpu_off:
        summary = (
            f"**throughput on/off: {on / off:.3f}** (overhead {1 - on / off:+.1%}); CPU per action on/off: "
            f"{cpu_on / cpu_off:.3f}; throughput sampled (10 %)/off: {sampled / off:.3f}"
        )
    return "\n".join(
        [
            f"rounds: {ROUNDS} (alternating order); every round's actions/s: {each}",
            "",
            "| leg | actions/s | server CPU s / 1,000 actions | p50 start ms | p99 start ms |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            summary,
            f"spans exported to the receiver by the 'on' and 'sampled' legs: {spans:,}",
            f"load average: {'; '.join(loads)}; {time.monotonic() - started:.0f} s",
            *(f"note: {n}" for n in notes),
        ]
    )


if __name__ == "__main__":
    print(main())
