"""What authentication costs the publish path: the end-to-end pipeline on the embedded store
with API keys (the default) against the same server with ``authentication: none``, run
alternately (keys, none, keys, none) in one run so the machine's drift hits both alike.

Both publishers send the key (a server without authentication ignores it), so the difference
is the server's work: the interceptor, the key ring's lookup (cached for half a second) and
the role and tenant checks. A second table times single-event ``PublishEvent`` calls one
after another, where the per-call share of authentication is largest.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench._procs import SqliteProbe, server
from bench.bench_pipeline import Run, _create_action, _pipeline
from neoactions.client import authorized_channel
from neoactions.v1 import events_pb2, events_pb2_grpc

ROUNDS = int(os.environ.get("BENCH_AUTH_ROUNDS", 2))
CALLS = int(os.environ.get("BENCH_AUTH_CALLS", 2_000))


async def _embedded(tmp: Path, name: str, **settings: str) -> Run:
    data = tmp / f"{name}-data"
    probe = SqliteProbe(data)
    try:
        return await _pipeline(name, str(data), probe, tmp, **settings)
    finally:
        await probe.close()


async def _unary_calls(tmp: Path, name: str, **settings: str) -> float:
    """Single-event PublishEvent calls per second, one after another."""
    srv = server(str(tmp / f"{name}-unary"), tmp / f"{name}-unary.log", tmp / f"{name}-unary-starts.txt", **settings)
    srv.start()
    try:
        await _create_action(srv.target, queued=False)
        async with authorized_channel(srv.target) as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)

            def request(seq: int) -> events_pb2.PublishEventRequest:
                data = f'{{"seq": {seq}, "order_id": "o-{seq}", "amount": 120.5, "region": "eu"}}'
                event = events_pb2.Event(type="bench.order.created", source="bench", data_json=data)
                return events_pb2.PublishEventRequest(parent="tenants/admin", event=event)

            for seq in range(200):  # warm-up
                await stub.PublishEvent(request(20_000_000 + seq))
            started = time.perf_counter()
            for seq in range(CALLS):
                await stub.PublishEvent(request(21_000_000 + seq))
            return CALLS / (time.perf_counter() - started)
    finally:
        srv.stop()


async def _run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as folder:
        tmp = Path(folder)
        keyed: list[Run] = []
        open_: list[Run] = []
        unary_keyed: list[float] = []
        unary_open: list[float] = []
        for i in range(ROUNDS):
            # the order alternates too: what runs second in a round meets the disk the first left
            legs = [("keys", {}, keyed, unary_keyed), ("none", {"authentication": "none"}, open_, unary_open)]
            for name, settings, runs, _ in legs[:: 1 if i % 2 == 0 else -1]:
                runs.append(await _embedded(tmp, f"{name}-{i}", **settings))
            for name, settings, _, rates in legs[:: 1 if i % 2 == 0 else -1]:
                rates.append(await _unary_calls(tmp, f"{name}-{i}", **settings))

    def mean(runs: list[Run], pick: str) -> float:
        return statistics.fmean(getattr(r, pick) for r in runs)

    rows = [
        "| measure | API keys | no authentication | keys / none |",
        "|---|---:|---:|---:|",
    ]
    for label, pick in (("actions run/s (pipeline)", "per_second"), ("events accepted/s", "publish_per_second")):
        a, b = mean(keyed, pick), mean(open_, pick)
        rows.append(f"| {label} | {a:,.0f} | {b:,.0f} | {a / b:.3f} |")
    p50k = statistics.fmean(r.latency_ms.get("p50", 0.0) for r in keyed)
    p50o = statistics.fmean(r.latency_ms.get("p50", 0.0) for r in open_)
    rows.append(f"| publish → start p50, ms | {p50k:.2f} | {p50o:.2f} | {p50k / p50o:.3f} |" if p50o else "")
    a, b = statistics.fmean(unary_keyed), statistics.fmean(unary_open)
    rows.append(f"| single-event PublishEvent calls/s | {a:,.0f} | {b:,.0f} | {a / b:.3f} |")
    each = ", ".join(f"{r.per_second:,.0f}" for r in keyed) + " vs " + ", ".join(f"{r.per_second:,.0f}" for r in open_)
    each += "; single calls/s: " + ", ".join(f"{r:,.0f}" for r in unary_keyed)
    each += " vs " + ", ".join(f"{r:,.0f}" for r in unary_open)
    notes = [n for r in keyed + open_ for n in r.notes]
    return (
        "\n".join(r for r in rows if r)
        + f"\n\nembedded store, {ROUNDS} rounds, the order of the two legs alternating; runs (actions/s): {each}."
        + ("\n\nnotes: " + "; ".join(notes) if notes else "")
    )


def main() -> str:
    return asyncio.run(_run())
