"""WebAssembly runner vs raw wasmtime-py, same module, same guest code, same run.

The raw baseline is what a caller of wasmtime-py would write by hand: a fresh
store and instance per call of an ``InstancePre``, WASI output collected by
callbacks, no asyncio, no limits other than the epoch deadline. It runs the very
argv the runner builds (the same wrapped guest code), so the difference is the
runner's own overhead: config parsing, the thread hop, log streaming, output
decoding and classification. Throughput is compared at one thread (sequential)
and at the runner's worker count (``workers`` threads driving raw wasmtime).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import statistics
import struct
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import wasmtime

from neoactions.domain.model import utcnow
from neoactions.sandboxes.wasm import guest, runtimes
from neoactions.sandboxes.wasm.config import Limits
from neoactions.sandboxes.wasm.runner import WasmRunner
from neoactions.server.runners import ExecutionContext, Result

WORKERS = 2
JS_SOURCE = (
    "export default function ({ data }) { return { total: data.items.reduce((s, i) => s + i.qty * i.price, 0) }; }"
)
PY_SOURCE = "def main(input):\n    return {'total': sum(i['qty'] * i['price'] for i in input['data']['items'])}\n"
DATA = {"items": [{"qty": q, "price": 2.5} for q in range(10)]}
EXPECTED = {"total": 112.5}


def _ctx() -> ExecutionContext:
    return ExecutionContext(
        tenant="bench",
        execution_id="x",
        action_name="bench",
        action_version=1,
        attempt=1,
        idempotency_key="k",
        deadline=utcnow() + timedelta(hours=1),
    )


class RawQuickJS:
    """Hand-written wasmtime-py: run QuickJS's reactor with a given argv."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, kind: str) -> None:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.engine, self.pre, self.kind = engine, linker.instantiate_pre(module), kind

    def run(self, argv: list[str]) -> Any:
        out: list[bytes] = []
        store = wasmtime.Store(self.engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv if self.kind == "command" else argv[:1]
        wasi.stdout_custom = out.append
        wasi.stderr_custom = out.append
        store.set_wasi(wasi)
        store.set_epoch_deadline(1000)
        exports = self.pre.instantiate(store).exports(store)
        if self.kind == "command":
            exports["_start"](store)  # type: ignore[operator]
        else:
            exports["_initialize"](store)  # type: ignore[operator]
            mem = exports["memory"]
            encoded = [a.encode() + b"\0" for a in argv]
            block = exports["malloc"](store, sum(map(len, encoded)) + 4 * len(encoded))  # type: ignore[operator]
            ptrs, offset = [], block + 4 * len(encoded)
            for arg in encoded:
                mem.write(store, arg, offset)  # type: ignore[union-attr]
                ptrs.append(offset)
                offset += len(arg)
            mem.write(store, struct.pack(f"<{len(ptrs)}I", *ptrs), block)  # type: ignore[union-attr]
            exports["qjs_init_argv"](store, len(ptrs), block)  # type: ignore[operator]
        text = b"".join(out)
        return json.loads(text[text.rindex(b"\x1eR") + 2 :])


def _raw_rate(raw: RawQuickJS, argv: list[str], n: int, threads: int) -> tuple[float, float]:
    """(executions/s, p50 ms) of raw wasmtime-py with ``threads`` threads."""
    latencies: list[float] = []

    def one(_: int) -> None:
        started = time.perf_counter()
        assert raw.run(argv) == EXPECTED
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if threads == 1:
        for i in range(n):
            one(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started), statistics.median(latencies) * 1000


async def _runner_rate(runner: WasmRunner, config: dict[str, Any], n: int, concurrency: int) -> tuple[float, float]:
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            started = time.perf_counter()
            updates = [u async for u in runner.execute(config, DATA, _ctx())]
            latencies.append(time.perf_counter() - started)
            assert updates[-1] == Result(EXPECTED), updates[-1]

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - started), statistics.median(latencies) * 1000


async def _measure() -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    data_dir = Path(tempfile.gettempdir()) / "neoactions-bench-wasm"
    runner = WasmRunner(data_dir=data_dir, workers=WORKERS, tenant_workers=WORKERS)  # one tenant: all workers
    try:
        payload = json.dumps({"config": {"language": "x"}, "data": DATA, "context": _ctx().to_dict()})
        for language, source, n in (("javascript", JS_SOURCE, 1000), ("python", PY_SOURCE, 24)):
            prepared = await asyncio.to_thread(runner.engine.runtime, language)
            build = runtimes.RUNTIMES[language]
            module = wasmtime.Module.deserialize_file(
                runner.engine.engine, str(runner.engine.cache_dir / f"{build.sha256}.cwasm")
            )
            raw = RawQuickJS(runner.engine.engine, module, prepared.kind)
            invocation = (
                guest.javascript(source, payload, Limits())
                if language == "javascript"
                else guest.python(source, payload)
            )
            config = {"language": language, "source": source}
            raw.run(invocation.argv)  # warm
            await _runner_rate(runner, config, 4, 1)
            rows.append((language, "raw wasmtime-py, 1 thread", *_raw_rate(raw, invocation.argv, n, 1)))
            rows.append((language, "runner, sequential", *(await _runner_rate(runner, config, n, 1))))
            rows.append((language, f"raw wasmtime-py, {WORKERS} threads", *_raw_rate(raw, invocation.argv, n, WORKERS)))
            rows.append(
                (language, f"runner, {WORKERS} workers, 16 in flight", *(await _runner_rate(runner, config, n, 16)))
            )
    finally:
        await runner.aclose()
    return rows


def main() -> str:
    rows = asyncio.run(_measure())
    lines = [
        "| language | setup | executions/s | p50 ms | vs raw (same threads) |",
        "|---|---|---:|---:|---:|",
    ]
    for i, (language, setup, rate, p50) in enumerate(rows):
        base = rows[i - 1][2] if setup.startswith("runner") else rate
        lines.append(f"| {language} | {setup} | {rate:.0f} | {p50:.2f} | {rate / base:.0%} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
