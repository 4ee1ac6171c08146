"""End-to-end durable throughput and latency, side by side with Celery and raw ceilings.

Method (one run, every figure measured in it):

1. **neoactions**, per mode — ``embedded`` (SQLite data dir in a temp dir), ``postgres``
   (a fresh database, dropped after), ``queued`` (PostgreSQL + Redis Streams,
   ``execution_mode: queued``) and ``queued-workers`` (the same with an ``api`` process and
   ``BENCH_WORKERS`` ``worker`` processes, CPU summed over them) — a real
   ``python -m neoactions.server`` process (uvloop,
   ``NEOACTIONS_*`` settings) with one action: ``bench.order.created`` → the ``python``
   handler ``bench.handlers:noop`` (async, records its start time). A separate client
   process (``bench._publisher``) publishes over gRPC ``PublishEvents``:

   - warm-up: ``BENCH_WARMUP`` events, waited for;
   - latency: a fixed offered load of ``BENCH_RATE`` events/s for ``BENCH_RATE_SECONDS`` in
     batches of ``BENCH_RATE_BATCH`` (open loop); publish→handler start per event,
     correlated by ``data.seq`` (the publisher's send time vs the handler's start time,
     same clock);
   - throughput: ``BENCH_EVENTS`` events in batches of ``BENCH_BATCH`` with
     ``BENCH_IN_FLIGHT`` calls in flight, as fast as the server takes them. Completion is
     read from the store (read-only polling of ``count(*)`` of final executions); the end
     time is the store's ``max(finished_at)``. actions/s = events / (last finish - first
     send). CPU: the server process (``/proc``), and for PostgreSQL its backends of this
     database, per 1,000 actions.

2. **Celery 5 + Redis**: ``celery worker --pool prefork -c 2`` (``acks_late``, Redis
   result backend), ``BENCH_CELERY_TASKS`` no-op tasks published one by one (``delay``) from
   a separate process; completed/s = tasks / (last ``date_done`` - first send).

3. **Dramatiq + Redis**: ``dramatiq --processes 2 --threads 8`` (Redis broker, results in
   Redis), ``BENCH_DRAMATIQ_TASKS`` no-op messages published one by one (``send``) from a
   separate process, as for Celery; completed/s = tasks / (last result's finish time - first
   send). Then a **drain** leg: the worker stopped, the same number of messages queued, a
   fresh worker started; consumed/s = (tasks - 1) / (last finish - first finish).

4. **Ceilings**: see ``bench._ceilings``.

Sizes are environment variables (defaults keep the module within ~4 minutes on 2 cores).
``BENCH_MODES`` picks modes; ``BENCH_PROFILE_DIR`` records the server with py-spy during
each throughput phase and appends the top hot spots.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import asyncpg
import redis
from google.protobuf import json_format

from bench import _ceilings
from bench._procs import (
    REDIS_BASE,
    ROOT,
    PostgresProbe,
    Probe,
    SqliteProbe,
    child_env,
    children,
    cpu_delta,
    cpu_seconds,
    free_port,
    fresh_database,
    load_average,
    read_times,
    run_json,
    server,
)
from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2, actions_pb2_grpc


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


EVENTS = int(_env("BENCH_EVENTS", 5_000))
BATCH = int(_env("BENCH_BATCH", 500))
IN_FLIGHT = int(_env("BENCH_IN_FLIGHT", 4))
WARMUP = int(_env("BENCH_WARMUP", 500))
#: small warm-up calls, so every process of a multi-process server gets some (one batch of 500
#: went to one process; the other met its first calls — imports, statement preparation,
#: connections — in the latency phase: a p99 of 120-350 ms that was all warm-up)
WARMUP_BATCH = int(_env("BENCH_WARMUP_BATCH", 25))
RATE = _env("BENCH_RATE", 1_000)
RATE_SECONDS = _env("BENCH_RATE_SECONDS", 5)
RATE_BATCH = int(_env("BENCH_RATE_BATCH", 10))
CELERY_TASKS = int(_env("BENCH_CELERY_TASKS", 4_000))
DRAMATIQ_TASKS = int(_env("BENCH_DRAMATIQ_TASKS", 10_000))
XADD_MESSAGES = int(_env("BENCH_XADD", 200_000))
XADD_PIPELINE = int(_env("BENCH_XADD_PIPELINE", 500))
ROWS = int(_env("BENCH_ROWS", 50_000))
ROW_BATCH = int(_env("BENCH_ROW_BATCH", 500))
COMMIT_SECONDS = _env("BENCH_COMMIT_SECONDS", 2)
PATTERN_ROWS = int(_env("BENCH_PATTERN_ROWS", 9_000))
MODES = os.environ.get("BENCH_MODES", "embedded,postgres,postgres-processes,queued,queued-workers").split(",")
#: worker processes beside the api process in the ``queued-workers`` mode
WORKERS = int(_env("BENCH_WORKERS", 1))
#: server processes of the ``postgres-processes`` mode, and the publisher's connections to it
PROCESSES = int(_env("BENCH_PROCESSES", 3))
CHANNELS = int(_env("BENCH_CHANNELS", 8))
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR", "")
#: which phase the profiler records: ``throughput`` or ``latency``
PROFILE_PHASE = os.environ.get("BENCH_PROFILE_PHASE", "throughput")
#: Redis databases the test suite does not use (it uses 0)
QUEUE_DB, CELERY_BROKER_DB, CELERY_BACKEND_DB = 13, 11, 12
DRAMATIQ_BROKER_DB, DRAMATIQ_BACKEND_DB = 9, 10

WARM_SEQ, RATE_SEQ, BURST_SEQ = 10_000_000, 1_000_000, 0
TIMES = chr(0xD7)


@dataclass
class Run:
    name: str
    actions: int = 0
    per_second: float = 0.0
    publish_per_second: float = 0.0
    cpu_per_1000: float = 0.0
    db_cpu_per_1000: float = 0.0
    commits_per_action: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    #: one-row commits of the store's database on a side connection during the latency phase
    commit_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: str = ""


# --- neoactions ---------------------------------------------------------------------------


async def _create_action(target: str, queued: bool) -> None:
    body: dict[str, object] = {
        "trigger": {"event_types": ["bench.order.created"]},
        "handler": {"type": "python", "config": {"function": "bench.handlers:noop"}},
    }
    if queued:
        body["execution_mode"] = "EXECUTION_MODE_QUEUED"
    async with authorized_channel(target) as ch:
        await actions_pb2_grpc.ActionServiceStub(ch).CreateAction(
            actions_pb2.CreateActionRequest(
                parent="tenants/admin", action_id="bench-noop", action=json_format.ParseDict(body, actions_pb2.Action())
            ),
            timeout=30,
        )


#: the latency target (ms) the disk's commit stalls are held against
TARGET_P99_MS = 25.0
#: seconds between the commit probe's commits
PROBE_EVERY = 0.005


def _commit_stalls(commits: list[tuple[float, float]]) -> dict[str, float]:
    """Percentiles of the probe's commits, and ``stalled``: the share of the phase during
    which a commit had been waiting longer than the target — an event published then waits
    longer than the target before it can start, whatever the server does."""
    times = [ms for _, ms in commits]
    out = _percentiles(times)
    if times:
        elapsed = sum(times) + 1000 * PROBE_EVERY * len(times)
        out["stalled"] = sum(max(0.0, ms - TARGET_P99_MS) for ms in times) / elapsed
    return out


def _slow_in_stalls(
    sends: dict[int, float], starts: dict[int, float], commits: list[tuple[float, float]]
) -> tuple[int, int]:
    """``(slow, in stalls)``: events that took longer than the target to start, and how many
    of them were published while a probe commit was stalled past the target (or within one
    probe interval before it began: their commit queued behind the same flush)."""
    stalls = sorted((at - PROBE_EVERY, at + ms / 1000) for at, ms in commits if ms > TARGET_P99_MS)
    slow = [t for s, t in sends.items() if s in starts and (starts[s] - t) * 1000 > TARGET_P99_MS]
    caught = sum(1 for t in slow if any(lo <= t <= hi for lo, hi in stalls))
    return len(slow), caught


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50": q[49], "p99": q[98], "max": values[-1], "n": float(len(values))}


async def _pipeline(
    name: str, store_url: str, probe: Probe, tmp: Path, workers: int = 0, processes: int = 1, **settings: str
) -> Run:
    """One mode; with ``workers``, the server is an ``api`` process and that many ``worker``
    processes run the executions; with ``processes``, one server of that many processes
    sharing its port, published to over ``CHANNELS`` connections. CPU is the sum of all
    of them."""
    run = Run(name)
    probe_commits: list[tuple[float, float]] = []
    clients: dict[str, str] = {}
    if processes > 1:
        settings = {**settings, "processes": str(processes), "port": str(free_port())}
        clients["BENCH_CHANNELS"] = str(CHANNELS)
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")  # for file names
    starts_file = tmp / f"{slug}-starts.txt"
    sends_file = tmp / f"{slug}-sends.txt"
    srv = server(store_url, tmp / f"{slug}-server.log", starts_file, **settings, **({"role": "api"} if workers else {}))
    helpers = [
        server(store_url, tmp / f"{slug}-worker{i}.log", tmp / f"{slug}-starts-{i}.txt", **settings, role="worker")
        for i in range(workers)
    ]
    srv.start()
    try:
        for helper in helpers:
            helper.start()
        target = srv.target
        await _create_action(target, queued="queued" in name)
        done = 0

        # warm-up: connections, statement caches, the handler import
        await run_json(
            "bench._publisher", target, "burst", str(WARM_SEQ), str(WARMUP), str(WARMUP_BATCH), "2", **clients
        )
        done += WARMUP
        if await probe.wait_final(done, 120) < done:
            run.notes.append("warm-up did not finish within 120 s")
            return run

        # latency at a fixed offered load
        profiler = _start_profiler(srv.pid, tmp / f"{slug}-pyspy.txt") if PROFILE_PHASE == "latency" else None
        total = int(RATE * RATE_SECONDS / RATE_BATCH) * RATE_BATCH
        phase_over = asyncio.Event()
        commits = asyncio.create_task(probe.commit_latencies(phase_over, PROBE_EVERY))
        try:
            pub = await run_json(
                "bench._publisher", target, "rate", str(RATE_SEQ), str(RATE), str(RATE_SECONDS), str(RATE_BATCH),
                str(sends_file), **clients,
            )  # fmt: skip
        finally:
            phase_over.set()
            probe_commits = await commits
            run.commit_ms = _commit_stalls(probe_commits)
        if pub["late_batches"]:
            run.notes.append(f"publisher fell behind its schedule on {pub['late_batches']} batches")
        done += total
        if await probe.wait_final(done, 120) < done:
            run.notes.append("latency phase did not finish within 120 s")

        if profiler is not None:
            run.profile = _stop_profiler(profiler, tmp / f"{slug}-pyspy.txt", name)
            profiler = None

        # throughput
        if PROFILE_PHASE == "throughput":
            profiler = _start_profiler(srv.pid, tmp / f"{slug}-pyspy.txt")
        commits0 = await probe.commits()
        pids = [srv.pid, *children(srv.pid), *(h.pid for h in helpers)]
        cpu0, db0 = sum(cpu_seconds(p) for p in pids), await probe.backend_cpu()
        pub = await run_json(
            "bench._publisher", target, "burst", str(BURST_SEQ), str(EVENTS), str(BATCH), str(IN_FLIGHT), **clients
        )
        done += EVENTS
        final = await probe.wait_final(done, within=max(120.0, EVENTS / 50))
        cpu1, db1 = sum(cpu_seconds(p) for p in pids), await probe.backend_cpu()
        if profiler is not None:
            run.profile = _stop_profiler(profiler, tmp / f"{slug}-pyspy.txt", name)
        _, last_finish = await probe.finish_times()
        commits1 = await probe.commits()
        run.actions = final - (done - EVENTS)
        if final < done:
            run.notes.append(f"only {run.actions} of {EVENTS} executions final within the wait")
        run.per_second = run.actions / (last_finish - pub["first_send"])
        run.publish_per_second = pub["accepted"] / (pub["last_answer"] - pub["first_send"])
        run.cpu_per_1000 = (cpu1 - cpu0) / run.actions * 1000
        run.db_cpu_per_1000 = cpu_delta(db0, db1) / run.actions * 1000
        if commits0 is not None and commits1 is not None:
            # the probe's own polling transactions included: a few per second
            run.commits_per_action = (commits1 - commits0) / run.actions
    finally:
        for helper in helpers:
            helper.stop()
        srv.stop()  # the handler module writes its start times on exit
    sends, starts = read_times(sends_file), read_times(starts_file)
    for i in range(workers):
        starts.update(read_times(tmp / f"{slug}-starts-{i}.txt"))
    latencies = [(starts[s] - t) * 1000 for s, t in sends.items() if s in starts]
    run.latency_ms = _percentiles(latencies)
    slow, caught = _slow_in_stalls(sends, starts, probe_commits)
    if slow:
        run.notes.append(f"{caught} of the {slow} events over {TARGET_P99_MS:g} ms were published during a disk stall")
    if len(latencies) < len(sends):
        run.notes.append(f"{len(sends) - len(latencies)} of {len(sends)} latency-phase events never started")
    return run


def _start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    if not PROFILE_DIR:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise RuntimeError("BENCH_PROFILE_DIR needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_profiler(proc: subprocess.Popen[bytes], out: Path, name: str) -> str:
    from bench._profile import summarize

    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    keep = Path(PROFILE_DIR)
    keep.mkdir(parents=True, exist_ok=True)
    if out.exists():
        shutil.copy(out, keep / out.name)
        return summarize(out, 15)
    return "(py-spy wrote nothing)"


async def _embedded(tmp: Path) -> Run:
    data = tmp / "embedded-data"
    probe = SqliteProbe(data)
    try:
        return await _pipeline("embedded", str(data), probe, tmp)
    finally:
        await probe.close()


async def _postgres(tmp: Path, queued: bool, workers: int = 0, processes: int = 1) -> Run:
    async with fresh_database() as (db, url):
        probe = PostgresProbe(url, db)
        settings: dict[str, str] = {}
        prefix = f"neoactions-bench-{uuid.uuid4().hex[:8]}"
        if queued or processes > 1:  # several processes share flow control through Redis
            settings = {"redis_url": f"{REDIS_BASE}/{QUEUE_DB}", "queue_prefix": prefix}
        try:
            name = ("queued" if queued else "postgres") + (f", api + {workers} worker" if workers else "")
            if processes > 1:
                name += f", {processes} processes"
            run = await _pipeline(name, url, probe, tmp, workers, processes, **settings)
        finally:
            await probe.close()
        if queued or processes > 1:
            r = redis.Redis.from_url(f"{REDIS_BASE}/{QUEUE_DB}")
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                r.delete(*keys)
            elif queued:
                run.notes.append(
                    "no Redis keys under the queue prefix: this server build does not route queued "
                    "executions through Redis yet (they ran through the in-process queue)"
                )
            r.close()
        return run


# --- Celery --------------------------------------------------------------------------------


async def _celery(tmp: Path) -> Run:
    run = Run("celery")
    broker, backend = f"{REDIS_BASE}/{CELERY_BROKER_DB}", f"{REDIS_BASE}/{CELERY_BACKEND_DB}"
    rb, rr = redis.Redis.from_url(broker), redis.Redis.from_url(backend)
    rb.flushdb()
    rr.flushdb()
    env = child_env(BENCH_CELERY_BROKER=broker, BENCH_CELERY_BACKEND=backend)
    worker_argv = [
        sys.executable, "-m", "celery", "-A", "bench._celery_app", "worker", "--pool", "prefork",
        "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
    ]  # fmt: skip
    worker = _spawn(worker_argv, env, tmp / "celery-worker.log")
    try:
        # a warm-up round (pool processes forked, connections up), then the measured one
        await _celery_round(env, rr, min(500, CELERY_TASKS), worker.pid)
        rr.flushdb()
        pids = [worker.pid, *children(worker.pid)]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        first, last_done, published = await _celery_round(env, rr, CELERY_TASKS, worker.pid)
        cpu1 = sum(cpu_seconds(p) for p in pids)
        run.actions = CELERY_TASKS
        run.per_second = CELERY_TASKS / (last_done - first)
        run.publish_per_second = published
        run.cpu_per_1000 = (cpu1 - cpu0) / CELERY_TASKS * 1000
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        rb.flushdb()
        rr.flushdb()
        rb.close()
        rr.close()
    return run


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("a") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, env=env, cwd=ROOT)


async def _celery_round(
    env: dict[str, str], rr: redis.Redis, count: int, worker_pid: int
) -> tuple[float, float, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._celery_app", "publish", str(count),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"celery publisher failed:\n{err.decode()[-3000:]}")
    pub = json.loads(out.decode().strip().splitlines()[-1])
    deadline = time.monotonic() + max(120.0, count / 20)
    while time.monotonic() < deadline:
        if rr.dbsize() >= count + 1:  # + the publisher's readiness probe
            break
        await asyncio.sleep(0.1)
    keys = [k for k in rr.scan_iter(match="celery-task-meta-*", count=5000)]
    done = [json.loads(v) for v in rr.mget(keys) if v]
    if len(done) < count + 1:
        raise RuntimeError(f"celery finished {len(done)} of {count + 1} tasks")
    last = max(datetime.fromisoformat(d["date_done"]).timestamp() for d in done)
    return pub["first_send"], last, count / (pub["last_send"] - pub["first_send"])


# --- Dramatiq ------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _dramatiq(tmp: Path) -> tuple[Run, Run]:
    """End to end (published one by one while the worker runs), then drain (queued first)."""
    run, drain = Run("dramatiq"), Run("dramatiq drain")
    broker, backend = f"{REDIS_BASE}/{DRAMATIQ_BROKER_DB}", f"{REDIS_BASE}/{DRAMATIQ_BACKEND_DB}"
    rb, rr = redis.Redis.from_url(broker), redis.Redis.from_url(backend)
    rb.flushdb()
    rr.flushdb()
    env = child_env(BENCH_DRAMATIQ_BROKER=broker, BENCH_DRAMATIQ_BACKEND=backend)
    worker_argv = [
        sys.executable, "-m", "dramatiq", "bench._dramatiq_app", "--processes", "2", "--threads", "8",
        "--queues", "bench", "--worker-shutdown-timeout", "10000",
    ]  # fmt: skip
    worker = _spawn(worker_argv, env, tmp / "dramatiq-worker.log")
    try:
        # a warm-up round (worker processes forked, connections up), then the measured one
        await _dramatiq_round(env, rr, min(500, DRAMATIQ_TASKS))
        rr.flushdb()
        pids = [worker.pid, *children(worker.pid)]
        cpu0 = sum(cpu_seconds(p) for p in pids)
        first, _, last_done, published = await _dramatiq_round(env, rr, DRAMATIQ_TASKS)
        cpu1 = sum(cpu_seconds(p) for p in pids)
        run.actions = DRAMATIQ_TASKS
        run.per_second = DRAMATIQ_TASKS / (last_done - first)
        run.publish_per_second = published
        run.cpu_per_1000 = (cpu1 - cpu0) / DRAMATIQ_TASKS * 1000
        _stop(worker)
        rr.flushdb()

        # drain: queue everything while no worker runs, then start one
        pub = await run_json("bench._dramatiq_app", "publish", str(DRAMATIQ_TASKS), "nowait", **env)
        drain.publish_per_second = DRAMATIQ_TASKS / (pub["last_send"] - pub["first_send"])
        started = time.time()
        worker = _spawn(worker_argv, env, tmp / "dramatiq-worker.log")
        pids = [worker.pid]
        first_done, last_done = await _dramatiq_wait(rr, DRAMATIQ_TASKS)
        pids += children(worker.pid)
        drain.actions = DRAMATIQ_TASKS
        drain.per_second = (DRAMATIQ_TASKS - 1) / (last_done - first_done)
        drain.notes.append(
            f"{DRAMATIQ_TASKS / (last_done - started):,.0f}/s counting the worker's start "
            f"({first_done - started:.2f} s to the first result)"
        )
    finally:
        _stop(worker)
        rb.flushdb()
        rr.flushdb()
        rb.close()
        rr.close()
    return run, drain


async def _dramatiq_round(env: dict[str, str], rr: redis.Redis, count: int) -> tuple[float, float, float, float]:
    """Publish ``count`` messages (after one readiness message) and wait for their results:
    ``(first send, first finish, last finish, published/s)``."""
    pub = await run_json("bench._dramatiq_app", "publish", str(count), **env)
    first_done, last_done = await _dramatiq_wait(rr, count + 1)  # + the publisher's readiness probe
    return pub["first_send"], first_done, last_done, count / (pub["last_send"] - pub["first_send"])


async def _dramatiq_wait(rr: redis.Redis, count: int) -> tuple[float, float]:
    """Wait for ``count`` results (one Redis list each, the actor's end time in it): ``(first, last)``."""
    deadline = time.monotonic() + max(120.0, count / 20)
    while time.monotonic() < deadline:
        if rr.dbsize() >= count:
            break
        await asyncio.sleep(0.1)
    keys = list(rr.scan_iter(count=5000))
    pipe = rr.pipeline(transaction=False)
    for key in keys:
        pipe.lindex(key, 0)
    done = [json.loads(v) for v in pipe.execute() if v]
    done = [d for d in done if isinstance(d, float)]
    if len(done) < count:
        raise RuntimeError(f"dramatiq finished {len(done)} of {count} messages")
    return min(done), max(done)


# --- report -------------------------------------------------------------------------------


def _versions() -> str:
    names = ["grpcio", "protobuf", "asyncpg", "aiosqlite", "redis", "uvloop", "celery", "kombu", "dramatiq"]
    found = []
    for n in names:
        try:
            found.append(f"{n} {version(n)}")
        except Exception:
            found.append(f"{n} (missing)")
    server_versions = []
    try:

        async def pg() -> str:
            conn = await asyncpg.connect(
                os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
            )
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        server_versions.append(f"PostgreSQL {asyncio.run(pg())}")
    except Exception as exc:
        server_versions.append(f"PostgreSQL ? ({exc})")
    try:
        server_versions.append(f"Redis {redis.Redis.from_url(REDIS_BASE).info('server')['redis_version']}")
    except Exception as exc:
        server_versions.append(f"Redis ? ({exc})")
    return ", ".join(server_versions + found)


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def main() -> str:
    tmp = Path(tempfile.mkdtemp(prefix="neoactions-bench-pipeline-"))
    lines: list[str] = []
    loads = [f"start {load_average()}"]
    t_start = time.monotonic()
    try:
        runs: list[Run] = []
        for mode in MODES:
            if mode == "embedded":
                runs.append(asyncio.run(_embedded(tmp)))
            elif mode in ("postgres", "queued"):
                runs.append(asyncio.run(_postgres(tmp, queued=mode == "queued")))
            elif mode == "queued-workers":
                runs.append(asyncio.run(_postgres(tmp, queued=True, workers=WORKERS)))
            elif mode == "postgres-processes":
                runs.append(asyncio.run(_postgres(tmp, queued=False, processes=PROCESSES)))
            loads.append(f"after {mode} {load_average()}")
        celery = asyncio.run(_celery(tmp))
        loads.append(f"after celery {load_average()}")
        dramatiq, dramatiq_drain = asyncio.run(_dramatiq(tmp))
        loads.append(f"after dramatiq {load_average()}")

        xadd = _ceilings.xadd(f"{REDIS_BASE}/{QUEUE_DB}", XADD_MESSAGES, XADD_PIPELINE)

        async def pg_ceiling() -> tuple[float, float, tuple[float, float, float]]:
            async with fresh_database() as (_, url):
                rows, commits = await _ceilings.postgres(url, ROWS, ROW_BATCH, COMMIT_SECONDS)
                conn = await asyncpg.connect(url)
                try:
                    ids = [r[0] for r in await conn.fetch("SELECT id FROM bench_executions LIMIT $1", PATTERN_ROWS)]
                finally:
                    await conn.close()
                return rows, commits, await _ceilings.postgres_patterns(url, ids, ROW_BATCH)

        pg_rows, pg_commits, (per_tx, per_tx_no_reset, batched) = asyncio.run(pg_ceiling())
        lite_rows, lite_commits = _ceilings.sqlite(ROWS, ROW_BATCH, COMMIT_SECONDS)
        echo = asyncio.run(_ceilings.grpc_echo(tmp / "echo.log", EVENTS, BATCH, IN_FLIGHT))
        echo_rate = echo["accepted"] / (echo["last_answer"] - echo["first_send"])
        loads.append(f"end {load_average()}")
    finally:
        keep = os.environ.get("BENCH_KEEP_TMP")
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)

    lines.append(
        f"events: {EVENTS:,} per mode in PublishEvents batches of {BATCH} ({IN_FLIGHT} in flight), "
        f"warm-up {WARMUP:,}; latency at {RATE:,.0f} events/s for {RATE_SECONDS:g} s in batches of {RATE_BATCH}; "
        f"Celery {CELERY_TASKS:,} tasks; Dramatiq {DRAMATIQ_TASKS:,} messages; "
        f"took {time.monotonic() - t_start:.0f} s.  \n"
        f"versions: {_versions()}.  \nload average: {'; '.join(loads)}.\n"
    )
    lines += [
        f"| system | actions/s | {TIMES} Celery | {TIMES} Dramatiq | publish events/s | server CPU s / 1k "
        "| DB CPU s / 1k | DB txns / action | p50 ms | p99 ms | max ms | disk commit p99 / max ms "
        "| disk stalled | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    nan = float("nan")
    for r in runs:
        lat, disk = r.latency_ms, r.commit_ms
        txns = "—" if r.commits_per_action is None else f"{r.commits_per_action:.2f}"
        lines.append(
            f"| neoactions {r.name} | {_fmt(r.per_second)} | {r.per_second / celery.per_second:.2f}{TIMES} "
            f"| {r.per_second / dramatiq.per_second:.2f}{TIMES} "
            f"| {_fmt(r.publish_per_second)} | {r.cpu_per_1000:.2f} | {r.db_cpu_per_1000:.2f} | {txns} "
            f"| {lat.get('p50', nan):.1f} | {lat.get('p99', nan):.1f} | {lat.get('max', nan):.0f} "
            f"| {disk.get('p99', nan):.1f} / {disk.get('max', nan):.0f} | {100 * disk.get('stalled', nan):.1f}% "
            f"| {'; '.join(r.notes)} |"
        )
    lines.append(
        f"| Celery 5 + Redis (prefork 2, acks_late) | {_fmt(celery.per_second)} | 1.00{TIMES} "
        f"| {celery.per_second / dramatiq.per_second:.2f}{TIMES} "
        f"| {_fmt(celery.publish_per_second)} (one by one) | {celery.cpu_per_1000:.2f} (worker + pool) "
        "| — | — | — | — | — | — | — | |"
    )
    lines.append(
        f"| Dramatiq + Redis (2 processes {TIMES} 8 threads, results in Redis) | {_fmt(dramatiq.per_second)} "
        f"| {dramatiq.per_second / celery.per_second:.2f}{TIMES} | 1.00{TIMES} "
        f"| {_fmt(dramatiq.publish_per_second)} (one by one) | {dramatiq.cpu_per_1000:.2f} (workers) "
        "| — | — | — | — | — | — | — | |"
    )
    lines.append(
        f"| Dramatiq drain (queued first, then consumed) | {_fmt(dramatiq_drain.per_second)} "
        f"| {dramatiq_drain.per_second / celery.per_second:.2f}{TIMES} "
        f"| {dramatiq_drain.per_second / dramatiq.per_second:.2f}{TIMES} "
        f"| {_fmt(dramatiq_drain.publish_per_second)} (queued, no worker) | — "
        f"| — | — | — | — | — | — | — | {'; '.join(dramatiq_drain.notes)} |"
    )

    def frac(rate: float, pick: str) -> str:
        return ", ".join(f"{r.name} {100 * getattr(r, pick) / rate:.1f}%" for r in runs if getattr(r, pick) > 0)

    lines += [
        "",
        "| ceiling | rate | neoactions as a fraction of it |",
        "|---|---:|---|",
        f"| Redis pipelined XADD ({XADD_PIPELINE}/pipeline) | {_fmt(xadd)} msg/s "
        f"| publish: {frac(xadd, 'publish_per_second')}; end to end: {frac(xadd, 'per_second')} |",
        f"| grpc.aio PublishEvents echo, same client and batches | {_fmt(echo_rate)} events/s "
        f"| publish: {frac(echo_rate, 'publish_per_second')} |",
        f"| asyncpg executemany, {ROW_BATCH} execution rows/txn, synchronous_commit on | {_fmt(pg_rows)} rows/s "
        f"| end to end: {frac(pg_rows, 'per_second')} |",
        f"| PostgreSQL, one row per transaction (commit rate, 1 connection) | {_fmt(pg_commits)} commits/s | |",
        f"| PostgreSQL start + finish UPDATEs only, 2 txns per execution, pool of 10, 32 workers "
        f"| {_fmt(per_tx)} executions/s | end to end: {frac(per_tx, 'per_second')} |",
        f"| … the same, pool without its reset query on release | {_fmt(per_tx_no_reset)} executions/s | |",
        f"| … {ROW_BATCH} executions per transaction (`id = ANY($1)`) | {_fmt(batched)} executions/s | |",
        f"| sqlite3 executemany, {ROW_BATCH} rows/txn, WAL, synchronous=FULL | {_fmt(lite_rows)} rows/s "
        f"| end to end: {frac(lite_rows, 'per_second')} |",
        f"| SQLite, one row per transaction (commit rate) | {_fmt(lite_commits)} commits/s | |",
    ]
    for r in runs:
        if r.profile:
            lines += ["", f"py-spy, {r.name} {PROFILE_PHASE} phase (server process):", "", r.profile]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
