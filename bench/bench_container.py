"""Container runner: a warm sidecar container against a cold ``docker run`` of the same image, in one run.

Both legs run the same handler work (echo a small JSON input) in the same image,
``neoactions-test/python-sidecar`` (Debian bookworm minbase + python3 + grpcio,
built by ``scripts/build-test-images.sh``), with the same hardening flags:

- **warm**: ``ContainerRunner.execute`` in sidecar mode — a pooled container
  serving the Handler protocol on a unix socket; the whole attempt is measured
  (pool lease, ``Execute`` call with context and deadline, log/progress/result
  updates, release).
- **cold**: ``docker run --rm -i`` with the input on stdin and a one-line Python
  echo as the command, timed from spawn to exit (container create, start, the
  interpreter's start, stop, removal) — what running the handler without a warm
  pool costs.
- **cold one-shot runner**: ``ContainerRunner.execute`` in one-shot mode of the
  same image (docker-py create/attach/start/wait/remove), for reference.

Run alone: ``python -m bench container``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "neoactions-test/python-sidecar:latest"
WARM_RUNS = int(os.environ.get("BENCH_CONTAINER_WARM", "400"))
COLD_RUNS = int(os.environ.get("BENCH_CONTAINER_COLD", "12"))
ECHO = "import json,sys; print(json.dumps({'echo': json.load(sys.stdin)}))"
HARDENING = [
    "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
    "--tmpfs", "/tmp:size=16m", "--pids-limit", "128", "--memory", "256m", "--memory-swap", "256m",
    "--user", "65534:65534",
]  # fmt: skip


def _ctx(seconds: float = 30.0) -> Any:
    from neoactions.domain.model import utcnow
    from neoactions.server.runners import ExecutionContext

    return ExecutionContext(
        tenant="bench",
        execution_id="bench",
        action_name="echo",
        action_version=1,
        attempt=1,
        idempotency_key="bench",
        deadline=utcnow() + timedelta(seconds=seconds),
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _runner_leg(mode: str, runs: int) -> list[float]:
    from neoactions.sandboxes.container import ContainerRunner
    from neoactions.server.runners import Result

    runner = ContainerRunner({"container_health_interval": 3600})
    config: dict[str, Any] = {"image": IMAGE, "mode": mode}
    if mode == "oneshot":
        config["command"] = ["/usr/bin/python3", "-c", ECHO]
    samples: list[float] = []
    try:
        warmup = 20 if mode == "sidecar" else 1
        for i in range(warmup + runs):
            started = time.perf_counter()
            last = None
            async for update in runner.execute(config, {"n": i, "payload": "x" * 64}, _ctx()):
                last = update
            elapsed = time.perf_counter() - started
            if not isinstance(last, Result):
                raise RuntimeError(f"{mode} execution failed: {last}")
            if i >= warmup:
                samples.append(elapsed)
    finally:
        await runner.aclose()
    return samples


def _cold_docker_run(runs: int) -> list[float]:
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        proc = subprocess.run(
            ["docker", "run", "--rm", "-i", *HARDENING, IMAGE, "/usr/bin/python3", "-c", ECHO],
            input=f'{{"n": {i}, "payload": "{"x" * 64}"}}',
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if proc.returncode != 0 or '"echo"' not in proc.stdout:
            raise RuntimeError(f"docker run failed: {proc.stderr[-500:]}")
        if i > 0:  # the first run may still page the image in
            samples.append(elapsed)
    return samples


def _docker_version() -> str:
    out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main() -> str:
    build = subprocess.run(["bash", str(ROOT / "scripts" / "build-test-images.sh")], capture_output=True, text=True)
    if build.returncode != 0:
        return f"_skipped: scripts/build-test-images.sh failed:_\n\n```\n{build.stderr[-1500:]}\n```\n"
    warm = asyncio.run(_runner_leg("sidecar", WARM_RUNS))
    cold = _cold_docker_run(COLD_RUNS)
    oneshot = asyncio.run(_runner_leg("oneshot", COLD_RUNS))
    warm_p50 = statistics.median(warm)
    cold_p50 = statistics.median(cold)
    rows = [
        ("warm sidecar (runner, pooled container)", warm),
        ("cold `docker run --rm -i` (CLI)", cold),
        ("cold one-shot (runner, docker-py)", oneshot),
    ]
    lines = [
        f"image `{IMAGE}`, Docker engine {_docker_version()}, {len(warm)} warm / {len(cold)} cold runs",
        "",
        "| leg | runs | p50 ms | p95 ms | mean ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, samples in rows:
        lines.append(
            f"| {label} | {len(samples)} | {statistics.median(samples) * 1e3:.2f} | "
            f"{_pct(samples, 0.95) * 1e3:.2f} | {statistics.fmean(samples) * 1e3:.2f} |"
        )
    ratio = cold_p50 / warm_p50
    verdict_ratio = "met" if ratio >= 50 else "NOT met"
    verdict_p50 = "met" if warm_p50 <= 0.010 else "NOT met"
    lines += [
        "",
        f"warm sidecar p50 is **{ratio:.0f}x** faster than a cold `docker run` of the same image "
        f"(target ≥ 50x: {verdict_ratio}); warm p50 **{warm_p50 * 1e3:.2f} ms** (target ≤ 10 ms: {verdict_p50}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
