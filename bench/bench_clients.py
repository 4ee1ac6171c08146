"""Publish throughput of the TypeScript client against the Python client, same server.

One server on the embedded store (SQLite, synchronous FULL), no actions; each client runs as
its own process on one connection with the same arguments: single events (``publish``, 16
calls in flight) and batches (``publish_many``/``publishMany`` of 100, 4 calls in flight).
The clients take turns (Python, TypeScript, Python, TypeScript) after a warm-up of each, so
both see the same machine and the same store; the figure per client is the mean of its two
runs, and the ratio is TypeScript / Python (the baseline).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench._procs import ROOT, child_env, load_average, run_json, server

TS_DIR = ROOT / "clients" / "typescript"
#: (label, mode, events, batch, calls in flight)
CASES = (
    ("single events (`publish`), 16 in flight", "single", 3_000, 1, 16),
    ("batches of 100 (`publish_many` / `publishMany`), 4 in flight", "batch", 30_000, 100, 4),
)


def build_typescript() -> None:
    """``npm ci`` (when node_modules is older than the lockfile) and ``npm run build``."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed (Node.js 20+) for the TypeScript client")
    stamp = TS_DIR / "node_modules" / ".installed"
    lock = TS_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TS_DIR, check=True, capture_output=True)
        stamp.touch()
    subprocess.run([npm, "run", "build"], cwd=TS_DIR, check=True, capture_output=True)


async def run_typescript(*args: str) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "dist/bench/publish.js",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=TS_DIR,
        env=child_env(),
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"publish.js failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def run_python(*args: str) -> dict[str, float]:
    return await run_json("bench.clients_publisher", *args)


async def _measure(rows: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = server(str(Path(tmp) / "data"), Path(tmp) / "server.log", Path(tmp) / "starts")
        srv.start()
        try:
            for label, mode, count, batch, in_flight in CASES:
                args = (srv.target, mode, str(count), str(batch), str(in_flight))
                warm = (srv.target, mode, str(max(count // 10, batch)), str(batch), str(in_flight))
                await run_python(*warm)
                await run_typescript(*warm)
                got: dict[str, list[dict[str, float]]] = {"python": [], "typescript": []}
                for _ in range(2):
                    got["python"].append(await run_python(*args))
                    got["typescript"].append(await run_typescript(*args))
                rate = {k: sum(r["events"] / r["seconds"] for r in v) / len(v) for k, v in got.items()}
                cpu = {k: sum(r["cpu"] for r in v) / sum(r["events"] for r in v) * 1e6 for k, v in got.items()}
                for name in ("python", "typescript"):
                    runs = ", ".join(f"{r['events'] / r['seconds']:,.0f}" for r in got[name])
                    rows.append(
                        f"| {label} | {'Python (baseline)' if name == 'python' else 'TypeScript'} |"
                        f" {rate[name]:,.0f} ({runs}) | {cpu[name]:,.0f} |"
                        f" {rate[name] / rate['python']:.2f}x |"
                    )
        finally:
            srv.stop()


def main() -> str:
    build_typescript()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    rows = [
        "| publishing | client | events/s (runs) | client CPU µs/event | vs Python |",
        "|---|---|---|---|---|",
    ]
    asyncio.run(_measure(rows))
    return (
        f"One server on the embedded store, no actions; Node.js {node}; load average at the end:"
        f" {load_average()}.\n\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    print(main())
