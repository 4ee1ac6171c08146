"""The Python side of ``python -m bench clients``: publish through ``AsyncClient`` as fast as
the server takes it, as its own process (the TypeScript side is
``clients/typescript/bench/publish.ts``, with the same arguments).

``python -m bench.clients_publisher TARGET single COUNT 1 IN_FLIGHT``
    COUNT ``publish`` calls (one event each), IN_FLIGHT at a time.
``python -m bench.clients_publisher TARGET batch COUNT BATCH IN_FLIGHT``
    ``publish_many`` calls of BATCH events, IN_FLIGHT at a time.

One connection, the key from ``NEOACTIONS_API_KEY``. Prints one JSON line: events accepted,
wall seconds, this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from neoactions.client import AsyncClient

EVENT_TYPE = "bench.order.created"


def _data(seq: int) -> dict[str, Any]:
    return {"seq": seq, "order_id": f"o-{seq}", "amount": 120.5, "region": "eu"}


async def publish(target: str, mode: str, count: int, batch: int, in_flight: int) -> dict[str, float]:
    step = 1 if mode == "single" else batch
    calls = [(first, min(step, count - first)) for first in range(0, count, step)]
    pending = iter(calls)
    accepted = 0
    async with AsyncClient(target, tenant="admin") as client:

        async def worker() -> None:
            nonlocal accepted
            for first, n in pending:
                if mode == "single":
                    await client.publish(EVENT_TYPE, _data(first), source="bench")
                    accepted += 1
                else:
                    events = [
                        {"type": EVENT_TYPE, "source": "bench", "data": _data(s)} for s in range(first, first + n)
                    ]
                    accepted += len(await client.publish_many(events))

        cpu0 = sum(os.times()[:2])
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds = time.perf_counter() - t0
        cpu = sum(os.times()[:2]) - cpu0
    return {"events": accepted, "seconds": seconds, "cpu": cpu}


def main(argv: list[str]) -> int:
    target, mode, count, batch, in_flight = argv
    if mode not in ("single", "batch"):
        print("usage: TARGET single|batch COUNT BATCH IN_FLIGHT", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(publish(target, mode, int(count), int(batch), int(in_flight)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
