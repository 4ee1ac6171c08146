"""The Celery peer of the end-to-end benchmark: one no-op task on Redis.

Broker and result backend come from ``BENCH_CELERY_BROKER`` / ``BENCH_CELERY_BACKEND``
(Redis database numbers the test suite does not use). ``task_acks_late``: a task is
acknowledged after it ran, as our executions are acknowledged after their result is stored.

``python -m bench._celery_app publish COUNT`` publishes COUNT tasks one by one (``delay``)
and prints one JSON line: first send, last send, own CPU seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

from celery import Celery

app = Celery(
    "neoactions_bench",
    broker=os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/11"),
    backend=os.environ.get("BENCH_CELERY_BACKEND", "redis://127.0.0.1:6379/12"),
)
app.conf.update(
    task_acks_late=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(seq: int) -> None:
    return None


def publish(count: int) -> dict[str, float]:
    noop.delay(-1).get(timeout=60)  # connections up, worker ready: not timed
    cpu0 = sum(os.times()[:2])
    first = time.time()
    for seq in range(count):
        noop.delay(seq)
    return {"first_send": first, "last_send": time.time(), "cpu": sum(os.times()[:2]) - cpu0}


if __name__ == "__main__":
    print(json.dumps(publish(int(sys.argv[2]))), flush=True)
