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

from bench._procs import SqliteProbe, cpu_seconds, server
from bench.bench_pipeline import Run, _create_action, _pipeline
from neoactions.client import authorized_channel
from neoactions.domain.keys import token_hash
from neoactions.server.access import Permission
from neoactions.server.api.authz import Authentication
from neoactions.server.keys import KeyRing, new_key
from neoactions.server.persistence.memory import MemoryStore
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


async def _unary_calls(tmp: Path, name: str, **settings: str) -> tuple[float, float]:
    """Single-event PublishEvent calls per second, one after another, and the server's CPU
    per call (µs)."""
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
            cpu0, started = cpu_seconds(srv.pid), time.perf_counter()
            for seq in range(CALLS):
                await stub.PublishEvent(request(21_000_000 + seq))
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(srv.pid) - cpu0
            return CALLS / elapsed, cpu / CALLS * 1e6
    finally:
        srv.stop()


class _Context:
    """What the interceptor reads of a call: its metadata."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


async def _admission_us(calls: int = 50_000) -> float:
    """CPU of admitting one call with a known key (the key ring's cache warm), in µs: what the
    interceptor adds to every call, measured alone."""
    store = MemoryStore()
    await store.open()
    key, token = new_key("admin", "bench", "writer")
    await store.create_api_key(key, token_hash(token))
    admit = Authentication(KeyRing(store))._admission(Permission.PUBLISH, "neoactions.v1.EventService/PublishEvent")
    context = _Context(token)
    await admit(context)
    started = time.process_time()
    for _ in range(calls):
        await admit(context)
    return (time.process_time() - started) / calls * 1e6


async def _run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as folder:
        tmp = Path(folder)
        keyed: list[Run] = []
        open_: list[Run] = []
        unary_keyed: list[tuple[float, float]] = []
        unary_open: list[tuple[float, float]] = []
        for i in range(ROUNDS):
            # the order alternates too: what runs second in a round meets the disk the first left
            legs = [("keys", {}, keyed, unary_keyed), ("none", {"authentication": "none"}, open_, unary_open)]
            for name, settings, runs, _ in legs[:: 1 if i % 2 == 0 else -1]:
                runs.append(await _embedded(tmp, f"{name}-{i}", **settings))
            for name, settings, _, rates in legs[:: 1 if i % 2 == 0 else -1]:
                rates.append(await _unary_calls(tmp, f"{name}-{i}", **settings))

    def mean(runs: list[Run], pick: str) -> float:
        return statistics.fmean(getattr(r, pick) for r in runs)

    def mean_of(pairs: list[tuple[float, float]], i: int) -> float:
        return statistics.fmean(p[i] for p in pairs)

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
    a, b = mean_of(unary_keyed, 0), mean_of(unary_open, 0)
    rows.append(f"| single-event PublishEvent calls/s | {a:,.0f} | {b:,.0f} | {a / b:.3f} |")
    a, b = mean_of(unary_keyed, 1), mean_of(unary_open, 1)
    rows.append(f"| server CPU per single-event call, µs | {a:,.0f} | {b:,.0f} | {a / b:.3f} |")
    a, b = mean(keyed, "cpu_per_1000"), mean(open_, "cpu_per_1000")
    rows.append(f"| server CPU per 1,000 actions (pipeline), s | {a:.3f} | {b:.3f} | {a / b:.3f} |")
    admission = await _admission_us()
    share = admission / mean_of(unary_open, 1)
    rows.append(f"| admitting one call alone (in process), µs | {admission:.1f} | 0 | {1 + share:.3f} |")
    each = ", ".join(f"{r.per_second:,.0f}" for r in keyed) + " vs " + ", ".join(f"{r.per_second:,.0f}" for r in open_)
    each += "; single calls/s: " + ", ".join(f"{r:,.0f}" for r, _ in unary_keyed)
    each += " vs " + ", ".join(f"{r:,.0f}" for r, _ in unary_open)
    notes = [n for r in keyed + open_ for n in r.notes]
    return (
        "\n".join(r for r in rows if r)
        + f"\n\nembedded store, {ROUNDS} rounds, the order of the two legs alternating; runs (actions/s): {each}."
        + ("\n\nnotes: " + "; ".join(notes) if notes else "")
    )


def main() -> str:
    return asyncio.run(_run())
