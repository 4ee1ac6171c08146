"""HTTP ingest against gRPC ``PublishEvents``: events accepted per second by one server on the
embedded store, through each door, in one run.

Both doors end in the same engine call (validation, dedup key, one store transaction per
request), so the difference is the transport and the envelope: protobuf over HTTP/2 against
CloudEvents JSON over HTTP/1.1 (uvicorn in the same event loop). Two shapes: batches of 100
events (``PublishEvents`` / ``application/cloudevents-batch+json``) and one event per request
(``PublishEvent`` / structured ``application/cloudevents+json``), each with 8 requests in
flight, alternating gRPC and HTTP for ``BENCH_HTTP_ROUNDS`` rounds so drift hits both alike. No
action matches the events: this is the ingest path alone. The clients run on the same machine
and take CPU from the server (the same way for both doors).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench._procs import BENCH_KEY, cpu_seconds, free_port, load_average, server
from neoactions.client import authorized_channel
from neoactions.v1 import events_pb2, events_pb2_grpc

ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", 3))
BATCH_EVENTS = int(os.environ.get("BENCH_HTTP_BATCH_EVENTS", 20_000))
SINGLE_EVENTS = int(os.environ.get("BENCH_HTTP_SINGLE_EVENTS", 3_000))
BATCH = 100
IN_FLIGHT = 8
_DATA = {"order_id": "o-1", "amount": 120.5, "region": "eu", "items": [{"sku": "a-1", "qty": 2}]}


def _cloudevent(seq: int) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"{uuid.uuid4().hex}-{seq}",
        "source": "bench",
        "type": "bench.http.ingested",
        "data": {**_DATA, "seq": seq},
    }


def _pb_event(seq: int) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"{uuid.uuid4().hex}-{seq}",
        source="bench",
        type="bench.http.ingested",
        data_json=json.dumps({**_DATA, "seq": seq}),
    )


#: the server's process id, whose CPU time each measurement reads
_SERVER_PID = 0
#: server and client CPU seconds of the last measurement
_LAST_CPU = [0.0, 0.0]


async def _drive(requests: int, send: Callable[[int], Awaitable[None]]) -> float:
    """Seconds to send ``requests`` requests, ``IN_FLIGHT`` at a time (the server's CPU seconds
    meanwhile go to ``_LAST_CPU``)."""
    queue = iter(range(requests))

    async def worker() -> None:
        for i in queue:
            await send(i)

    cpu, own = cpu_seconds(_SERVER_PID), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    _LAST_CPU[:] = [cpu_seconds(_SERVER_PID) - cpu, time.process_time() - own]
    return time.perf_counter() - started


async def _grpc(target: str, batch: int, events: int) -> float:
    async with authorized_channel(target) as channel:
        stub = events_pb2_grpc.EventServiceStub(channel)

        async def send(i: int) -> None:
            if batch == 1:
                await stub.PublishEvent(events_pb2.PublishEventRequest(parent="tenants/admin", event=_pb_event(i)))
            else:
                msgs = [_pb_event(i * batch + j) for j in range(batch)]
                await stub.PublishEvents(events_pb2.PublishEventsRequest(parent="tenants/admin", events=msgs))

        await _drive(max(1, 200 // batch), send)  # warm-up
        return events / await _drive(events // batch, send)


async def _http(base: str, batch: int, events: int) -> float:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    headers = {"authorization": f"Bearer {BENCH_KEY}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=60) as client:

        async def send(i: int) -> None:
            if batch == 1:
                body = json.dumps(_cloudevent(i))
                kind = "application/cloudevents+json"
            else:
                body = json.dumps([_cloudevent(i * batch + j) for j in range(batch)])
                kind = "application/cloudevents-batch+json"
            response = await client.post("/v1/tenants/admin/events", content=body, headers={"content-type": kind})
            if response.status_code != 202:
                raise RuntimeError(f"HTTP ingest answered {response.status_code}: {response.text[:500]}")

        await _drive(max(1, 200 // batch), send)
        return events / await _drive(events // batch, send)


async def _run() -> str:
    global _SERVER_PID
    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    client: dict[tuple[str, str], list[float]] = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        tmp = Path(folder)
        http_port = free_port()
        srv = server(str(tmp / "data"), tmp / "server.log", tmp / "starts.txt", http_port=str(http_port))
        srv.start()
        _SERVER_PID = srv.pid
        base = f"http://127.0.0.1:{http_port}"
        try:
            for _ in range(ROUNDS):
                for shape, batch, events in (("batch", BATCH, BATCH_EVENTS), ("single", 1, SINGLE_EVENTS)):
                    for door in ("grpc", "http"):
                        rate = await (
                            _grpc(srv.target, batch, events) if door == "grpc" else _http(base, batch, events)
                        )
                        results.setdefault((door, shape), []).append(rate)
                        cpu.setdefault((door, shape), []).append(_LAST_CPU[0] * 1e6 / events)
                        client.setdefault((door, shape), []).append(_LAST_CPU[1] * 1e6 / events)
        finally:
            srv.stop()

    rows = [
        "| shape | gRPC events/s | HTTP events/s | HTTP / gRPC "
        "| server CPU µs/event gRPC | HTTP | HTTP / gRPC | client CPU µs/event gRPC | HTTP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"batch": f"batches of {BATCH}", "single": "one event per request"}
    for shape in ("batch", "single"):
        g = statistics.median(results[("grpc", shape)])
        h = statistics.median(results[("http", shape)])
        cg = statistics.median(cpu[("grpc", shape)])
        ch = statistics.median(cpu[("http", shape)])
        kg = statistics.median(client[("grpc", shape)])
        kh = statistics.median(client[("http", shape)])
        rows.append(
            f"| {labels[shape]} | {g:,.0f} | {h:,.0f} | {h / g:.2f} "
            f"| {cg:,.0f} | {ch:,.0f} | {ch / cg:.2f} | {kg:,.0f} | {kh:,.0f} |"
        )
    each = "; ".join(
        f"{door} {shape}: " + ", ".join(f"{v:,.0f}" for v in values) for (door, shape), values in results.items()
    )
    return (
        "\n".join(rows)
        + f"\n\nembedded store, {IN_FLIGHT} requests in flight, medians of {ROUNDS} alternating rounds"
        + f" (each: {each}); load average before: {load_before}."
    )


def main() -> str:
    return asyncio.run(_run())
