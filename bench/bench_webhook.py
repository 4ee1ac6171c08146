"""Webhook runner vs a bare httpx client, posting to the same loopback server in one run.

The receiver is a minimal keep-alive HTTP/1.1 server in a subprocess (so its
work does not share this process's GIL). Both legs send the same JSON payload
one request at a time over a pooled connection; the runner leg adds what a
delivery really costs: config → request, Standard Webhooks signing (two secrets,
as during a rotation), ``Idempotency-Key`` and ``traceparent``, the SSRF guard,
the overall timeout, capped reading, classification and the result document.
Rounds alternate between the legs so drift on a shared machine hits both.

Run alone: ``python -m bench webhook``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "6"))
PER_ROUND = int(os.environ.get("BENCH_WEBHOOK_PER_ROUND", "300"))
WARMUP = 200
PAYLOAD = {"type": "orders.paid", "order": {"id": 42, "amount": 99.5, "currency": "EUR"}, "customer": "cus_123"}
SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]
_REPLY = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{"received":true}'


class _Receiver(asyncio.Protocol):
    """Answers every request with a fixed 200; understands content-length bodies only."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            self.transport.write(_REPLY)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Receiver, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(url: str) -> tuple[list[float], list[float]]:
    import json

    import httpx

    from neoactions.domain.model import utcnow
    from neoactions.sandboxes.http import AddressPolicy, HttpRunner
    from neoactions.server.runners import ExecutionContext, Failure

    body = json.dumps(PAYLOAD, separators=(",", ":")).encode()
    bare_client = httpx.AsyncClient(trust_env=False)
    runner = HttpRunner(AddressPolicy.from_networks(["127.0.0.0/8"]))
    config = {"url": url, "webhook": {"secrets": SECRETS}}

    async def bare() -> None:
        response = await bare_client.post(url, content=body, headers={"content-type": "application/json"})
        response.raise_for_status()
        response.json()

    async def delivered() -> None:
        ctx = ExecutionContext(
            tenant="bench",
            execution_id="exec-1",
            action_name="webhook",
            action_version=1,
            attempt=1,
            idempotency_key="exec-1-key",
            deadline=utcnow() + timedelta(seconds=30),
            trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
        async for update in runner.execute(config, PAYLOAD, ctx):
            if isinstance(update, Failure):
                raise RuntimeError(update.error.message)

    bare_ms: list[float] = []
    runner_ms: list[float] = []
    try:
        for _ in range(WARMUP):
            await bare()
            await delivered()
        for round_number in range(ROUNDS):
            legs = [(bare, bare_ms), (delivered, runner_ms)]
            if round_number % 2:
                legs.reverse()
            for leg, samples in legs:
                for _ in range(PER_ROUND):
                    started = time.perf_counter()
                    await leg()
                    samples.append((time.perf_counter() - started) * 1000)
    finally:
        await bare_client.aclose()
        await runner.aclose()
    return bare_ms, runner_ms


def main() -> str:
    """Run both legs against one receiver and return a markdown section."""
    root = Path(__file__).resolve().parent.parent
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_webhook", "--serve"], stdout=subprocess.PIPE, text=True, cwd=root
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        bare_ms, runner_ms = asyncio.run(_measure(f"http://127.0.0.1:{port}/hooks"))
    finally:
        receiver.terminate()
        receiver.wait(10)
    bare_p50, runner_p50 = statistics.median(bare_ms), statistics.median(runner_ms)
    rows = [
        ("bare httpx.AsyncClient POST", bare_ms),
        ("http runner (signed webhook)", runner_ms),
    ]
    lines = [
        f"{len(bare_ms)} sequential deliveries per leg ({ROUNDS} alternating rounds of {PER_ROUND}), "
        "same loopback receiver (subprocess), same run.",
        "",
        "| leg | p50 ms | p99 ms | mean ms | deliveries/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, samples in rows:
        mean = statistics.fmean(samples)
        lines.append(
            f"| {name} | {statistics.median(samples):.3f} | {_percentile(samples, 0.99):.3f} "
            f"| {mean:.3f} | {1000 / mean:,.0f} |"
        )
    ratio = runner_p50 / bare_p50
    overhead_ms = runner_p50 - bare_p50
    lines += [
        "",
        f"runner / bare at p50: **{ratio:.2f}x** (target ≤ 1.5x); "
        f"overhead at p50: **{overhead_ms * 1000:.0f} µs** (target ≤ 1 ms)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if "--serve" in sys.argv:
        asyncio.run(_serve())
    else:
        print(main())
