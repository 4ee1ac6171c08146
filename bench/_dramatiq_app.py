"""The Dramatiq peer of the end-to-end benchmark: one no-op actor on Redis, results in Redis.

Broker and result backend come from ``BENCH_DRAMATIQ_BROKER`` / ``BENCH_DRAMATIQ_BACKEND``
(Redis database numbers the test suite does not use). Dramatiq acknowledges a message after
its actor ran, as our executions are acknowledged after their result is stored; no retries.
The actor returns ``time.time()`` at its end, so the stored result says when it finished.

Worker: ``python -m dramatiq bench._dramatiq_app --processes 2 --threads 8``.

``python -m bench._dramatiq_app publish COUNT [wait]`` publishes COUNT messages one by one
(``send``) and prints one JSON line: first send, last send, own CPU seconds. With ``wait``
(the default) it first waits for one message to complete (connections up, a worker ready);
``nowait`` skips that, for queueing messages while no worker runs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

broker = RedisBroker(url=os.environ.get("BENCH_DRAMATIQ_BROKER", "redis://127.0.0.1:6379/9"))
broker.add_middleware(
    Results(backend=RedisBackend(url=os.environ.get("BENCH_DRAMATIQ_BACKEND", "redis://127.0.0.1:6379/10")))
)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="bench_noop", queue_name="bench", store_results=True, max_retries=0)
def noop(seq: int) -> float:
    return time.time()


def publish(count: int, wait: bool = True) -> dict[str, float]:
    if wait:  # connections up, worker ready: not timed
        noop.send(-1).get_result(block=True, timeout=60_000)
    cpu0 = sum(os.times()[:2])
    first = time.time()
    for seq in range(count):
        noop.send(seq)
    return {"first_send": first, "last_send": time.time(), "cpu": sum(os.times()[:2]) - cpu0}


if __name__ == "__main__":
    wait = len(sys.argv) < 4 or sys.argv[3] != "nowait"
    print(json.dumps(publish(int(sys.argv[2]), wait)), flush=True)
