"""The event store's tools: backtest rate (events per second per core through the matcher's
compiled form, evaluation alone and with the store's scan), and ``StreamEvents`` against
``PublishEvents`` batches and the raw pipelined Redis ``XADD`` ceiling, in one run; plus the
server's RSS while a slow reader consumes a 100,000-event stream.

``python -m bench eventstore`` (``BENCH_EVENTSTORE_EVENTS`` sets the event counts, default
100,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._ceilings import xadd
from bench._procs import REDIS_BASE, server
from neoactions.client import authorized_channel
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    ADMIN_TENANT,
    Action,
    ConditionGroup,
    Event,
    FieldCondition,
    HandlerSpec,
    Trigger,
)
from neoactions.server.eventstore.backtest import Candidate, backtest, evaluate
from neoactions.server.eventstore.port import EventSelection
from neoactions.server.matching import NaiveMatcher, compile_trigger
from neoactions.server.persistence import SqliteStore
from neoactions.v1 import events_pb2, events_pb2_grpc

N = int(os.environ.get("BENCH_EVENTSTORE_EVENTS", "100000"))
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _events(n: int) -> list[Event]:
    types = ["orders.created", "orders.paid", "orders.eu.created", "users.created", "stock.moved"]
    return [
        Event(
            id=new_id(),
            tenant=ADMIN_TENANT,
            type=types[i % 5],
            data={"total": (i * 37) % 100, "tier": ("gold", "silver")[i % 2], "order": f"o-{i}"},
            source="shop",
            time=T0 + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]


def _candidates() -> list[Action]:
    return [
        Action(
            name="ship",
            tenant=ADMIN_TENANT,
            trigger=Trigger(
                ["orders.**"], conditions=[ConditionGroup("all", [FieldCondition("data.total", "gt", 50)])]
            ),
            handler=HandlerSpec("python", {"function": "bench.handlers:noop"}),
        )
    ]


async def _backtest_section(rows: list[str]) -> None:
    events = _events(N)
    envelopes = [e.envelope() for e in events]
    action = _candidates()[0]
    compiled = compile_trigger(action.trigger)

    # evaluation alone: envelopes in memory, one core
    candidate = Candidate(action, compiled)
    cpu = time.process_time()
    evaluate([candidate], envelopes, 5, 5)
    eval_rate = N / (time.process_time() - cpu)
    # the baseline: the reference matcher over the same envelopes
    naive = NaiveMatcher()
    naive.put(action)
    cpu = time.process_time()
    hits = sum(1 for env in envelopes if naive.match_envelope(ADMIN_TENANT, env))
    naive_rate = N / (time.process_time() - cpu)
    assert hits == candidate.report.matched, (hits, candidate.report.matched)

    # end to end on the embedded store: scan pages of envelopes + evaluate
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "data", synchronous="NORMAL")
        await store.open()
        try:
            for i in range(0, N, 10_000):
                await store.append(ADMIN_TENANT, events[i : i + 10_000], [])
            cpu, wall = time.process_time(), time.perf_counter()
            report = await backtest(store, ADMIN_TENANT, [Candidate(action, compiled)], EventSelection())
            e2e_cpu, e2e_wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            await store.close()
    assert report.events_scanned == N and report.actions[0].matched == hits
    rows.append(
        f"| backtest: compiled predicate alone (envelopes in memory) | {eval_rate:,.0f} events/s/core | 1 core |"
    )
    rows.append(
        f"| backtest: naive reference matcher, same envelopes (baseline) | {naive_rate:,.0f} events/s/core"
        f" | compiled is {eval_rate / naive_rate:.2f}x |"
    )
    rows.append(
        f"| backtest end to end, SQLite scan + evaluate ({N:,} stored events) | {N / e2e_cpu:,.0f} events/s/core"
        f" ({N / e2e_wall:,.0f}/s wall) | {N / e2e_cpu / naive_rate:.2f}x |"
    )


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _event(i: int, pad: str = "") -> events_pb2.Event:
    return events_pb2.Event(type="load.tested", data_json=json.dumps({"i": i, "pad": pad}))


async def _stream(
    target: str, n: int, per_request: int, pid: int, slow_reader: bool = False, pad: str = ""
) -> tuple[float, int]:
    """Events/s through StreamEvents (the whole stream), and the server's peak RSS growth in KiB."""

    async def requests() -> AsyncIterator[events_pb2.StreamEventsRequest]:
        for start in range(0, n, per_request):
            yield events_pb2.StreamEventsRequest(
                parent="tenants/admin" if start == 0 else "",
                events=[_event(i, pad) for i in range(start, min(n, start + per_request))],
            )

    before = peak = _rss_kib(pid)
    acked = 0
    async with authorized_channel(target) as channel:
        t0 = time.perf_counter()
        async for answer in events_pb2_grpc.EventServiceStub(channel).StreamEvents(requests()):
            assert not answer.error_code, answer.error_message
            acked += len(answer.event_ids)
            if answer.sequence % 50 == 0:
                peak = max(peak, _rss_kib(pid))
                if slow_reader:
                    await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
    assert acked == n
    return n / elapsed, peak - before


async def _publish_batches(target: str, n: int, batch: int, concurrency: int) -> float:
    async with authorized_channel(target) as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)
        starts = list(range(0, n, batch))

        async def worker(mine: list[int]) -> None:
            for start in mine:
                events = [_event(i) for i in range(start, min(n, start + batch))]
                await stub.PublishEvents(events_pb2.PublishEventsRequest(parent="tenants/admin", events=events))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(starts[k::concurrency]) for k in range(concurrency)))
        return n / (time.perf_counter() - t0)


async def _publish_section(rows: list[str]) -> None:
    ceiling = xadd(f"{REDIS_BASE}/0", N, 1000)
    rows.append(f"| raw pipelined Redis XADD, 1,000 per pipeline (ceiling) | {ceiling:,.0f} msgs/s | 1.00x |")
    with tempfile.TemporaryDirectory() as tmp:
        srv = server(str(Path(tmp) / "data"), Path(tmp) / "server.log", Path(tmp) / "starts")
        srv.start()
        try:
            for label, per_request in (
                ("StreamEvents, 100 events per request", 100),
                ("StreamEvents, 1 event per request", 1),
            ):
                n = N if per_request > 1 else N // 10
                rate, _ = await _stream(srv.target, n, per_request, srv.pid)
                rows.append(f"| {label} ({n:,} events) | {rate:,.0f} events/s | {rate / ceiling:.3f}x |")
            rate = await _publish_batches(srv.target, N, 100, 4)
            rows.append(
                f"| PublishEvents, batches of 100, 4 calls in flight ({N:,} events) | {rate:,.0f} events/s"
                f" | {rate / ceiling:.3f}x |"
            )
            pad = "x" * 1024
            rate, grown = await _stream(srv.target, N, 10, srv.pid, slow_reader=True, pad=pad)
            payload_mib = N * (len(pad) + 30) / 2**20
            rows.append(
                f"| StreamEvents, {N:,} events of 1 KiB, 10 per request, slow reader | {rate:,.0f} events/s"
                f" | server RSS peak +{grown / 1024:.0f} MiB for {payload_mib:.0f} MiB sent |"
            )
        finally:
            srv.stop()


def main() -> str:
    rows = ["| measurement | rate | vs baseline |", "|---|---|---|"]
    asyncio.run(_backtest_section(rows))
    asyncio.run(_publish_section(rows))
    return (
        "Backtest: one action (`orders.**`, `data.total gt 50`) against stored events; CPU time of this"
        " process. Publishing: a server on the embedded store (SQLite, synchronous FULL), no actions, one"
        " client; the Redis ceiling is the raw pipelined XADD of the same number of messages.\n\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    print(main())
