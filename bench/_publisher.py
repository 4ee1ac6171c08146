"""The publishing client of the end-to-end benchmark, run as its own process.

``python -m bench._publisher TARGET burst FIRST_SEQ COUNT BATCH IN_FLIGHT``
    publish COUNT events in PublishEvents batches of BATCH, IN_FLIGHT calls at a time,
    as fast as the server takes them (closed loop).
``python -m bench._publisher TARGET rate FIRST_SEQ RATE SECONDS BATCH SEND_TIMES_FILE``
    offer RATE events/s for SECONDS in batches of BATCH on a fixed schedule (open loop:
    a slow answer does not delay the next batch) and write ``seq send_time`` lines.

Each event carries ``data.seq`` (the correlation key of the latency figures). Prints one
JSON line: first send, last answer (``time.time()``), events accepted, own CPU seconds.
The target may be a neoactions server or the bare echo server of ``bench._echo``.
``BENCH_CHANNELS`` (default 1) spreads the calls over that many connections, round robin —
as many publishers would — so a server of several processes sharing its port
(``SO_REUSEPORT``, which balances connections, not calls) gets work in each process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time

from neoactions.client import authorized_channel
from neoactions.v1 import events_pb2, events_pb2_grpc

PARENT = "tenants/admin"
EVENT_TYPE = "bench.order.created"


def make_request(first: int, count: int) -> events_pb2.PublishEventsRequest:
    return events_pb2.PublishEventsRequest(
        parent=PARENT,
        events=[
            events_pb2.Event(
                type=EVENT_TYPE,
                source="bench",
                data_json=json.dumps({"seq": seq, "order_id": f"o-{seq}", "amount": 120.5, "region": "eu"}),
            )
            for seq in range(first, first + count)
        ],
    )


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


Stubs = itertools.cycle  # of events_pb2_grpc.EventServiceStub


async def burst(stubs: Stubs, first: int, count: int, batch: int, in_flight: int) -> dict:
    requests = [make_request(s, min(batch, first + count - s)) for s in range(first, first + count, batch)]
    pending = iter(requests)
    accepted = 0

    async def lane() -> None:
        nonlocal accepted
        for request in pending:
            response = await next(stubs).PublishEvents(request, timeout=120)
            accepted += len(response.results)

    cpu0, t0 = _cpu(), time.time()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return {"first_send": t0, "last_answer": time.time(), "accepted": accepted, "cpu": _cpu() - cpu0}


async def rate(stubs: Stubs, first: int, per_second: float, seconds: float, batch: int, out: str) -> dict:
    batches = int(per_second * seconds / batch)
    requests = [make_request(first + i * batch, batch) for i in range(batches)]
    interval = batch / per_second
    sent: list[tuple[int, float]] = []
    accepted = 0
    late = 0

    async def send(request: events_pb2.PublishEventsRequest) -> None:
        nonlocal accepted
        at = time.time()
        sent.append((json.loads(request.events[0].data_json)["seq"], at))
        response = await next(stubs).PublishEvents(request, timeout=120)
        accepted += len(response.results)

    tasks = []
    loop = asyncio.get_running_loop()
    cpu0, t0, start = _cpu(), time.time(), loop.time()
    for i, request in enumerate(requests):
        delay = start + i * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -interval:
            late += 1
        tasks.append(asyncio.create_task(send(request)))
    await asyncio.gather(*tasks)
    _write_send_times(out, sent, batch)
    return {
        "first_send": t0,
        "last_answer": time.time(),
        "accepted": accepted,
        "cpu": _cpu() - cpu0,
        "late_batches": late,
        "offered_seconds": requests and (len(requests) * interval),
    }


def _write_send_times(path: str, sent: list[tuple[int, float]], batch: int) -> None:
    with open(path, "w") as f:
        f.writelines(f"{seq + k} {at:.6f}\n" for seq, at in sent for k in range(batch))


async def main(argv: list[str]) -> dict:
    target, mode, *args = argv
    # a local subchannel pool: otherwise channels to one target share one connection
    channels = [
        authorized_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(int(os.environ.get("BENCH_CHANNELS", "1")))
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), 30)
        stubs = itertools.cycle([events_pb2_grpc.EventServiceStub(c) for c in channels])
        if mode == "burst":
            first, count, batch, in_flight = map(int, args)
            return await burst(stubs, first, count, batch, in_flight)
        first, per_second, seconds, batch, out = int(args[0]), float(args[1]), float(args[2]), int(args[3]), args[4]
        return await rate(stubs, first, per_second, seconds, batch, out)
    finally:
        await asyncio.gather(*(c.close() for c in channels))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1:]))), flush=True)
