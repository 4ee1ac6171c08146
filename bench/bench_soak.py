"""Soak: a real server under mixed load with hostile requests interleaved, its memory sampled.

Runs only when named (``python -m bench soak``; ``make bench`` without names skips it):
it takes ``BENCH_SOAK_WARMUP`` + ``BENCH_SOAK_SECONDS`` (default 120 + 1,800 s).

Method (one process drives, the server is its own process):

- **server**: ``python -m neoactions.server`` on a fresh embedded store in a temp dir
  (``BENCH_SOAK_STORE=postgres``: a fresh PostgreSQL database, dropped after, with Redis
  for flow control), python handlers approved for the ``bench`` package only, loopback
  allow-listed for the http runner (``runner_settings.http_allow_networks``);
- **normal load**: ``PublishEvents`` batches of ``BENCH_SOAK_BATCH`` events offered at
  ``BENCH_SOAK_RATE`` events/s (open loop, at most 8 calls in flight; a batch that finds
  8 still in flight is skipped and counted), each batch mixing three actions: 70 % a
  ``python`` handler (``bench.handlers:soak``), 20 % an ``http`` POST to a loopback
  receiver (``bench.bench_webhook --serve``), 10 % a ``wasm`` JavaScript handler; plus one
  ``ListEvents`` and one ``ListExecutions`` of 100 per second;
- **hostile requests**, one every ``BENCH_SOAK_HOSTILE_EVERY`` seconds, kinds in turn
  (``BENCH_SOAK_HOSTILE`` picks kinds): deeply nested JSON, huge strings, lone surrogates,
  undecodable bytes on a raw channel, template bombs, CEL ``map()`` bombs, unapproved
  python functions, tenant names with control characters, huge page sizes. Each is
  expected to fail cleanly (``INVALID_ARGUMENT`` and the like); outcomes are counted by
  status code, and ``INTERNAL`` / ``UNKNOWN`` answers are listed;
- **samples**: the server's RSS (``/proc/PID/statm``) and open file descriptors every
  ``BENCH_SOAK_SAMPLE_EVERY`` seconds; a gRPC health check every second (its latency
  says whether the server kept answering).

RSS is judged by level: *drift* is the median of the last tenth of the measured period
against the median of its first tenth; the verdict is "flat" when it is within 10 %. The
peak sample and a least-squares slope (MB/hour) are reported beside it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._procs import (
    REDIS_BASE,
    ROOT,
    Listening,
    PostgresProbe,
    Probe,
    SqliteProbe,
    cpu_seconds,
    fresh_database,
    load_average,
    server,
)
from neoactions.client import authorized_channel
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


SECONDS = _env("BENCH_SOAK_SECONDS", 1800)
WARMUP = _env("BENCH_SOAK_WARMUP", 120)
RATE = _env("BENCH_SOAK_RATE", 200)
BATCH = int(_env("BENCH_SOAK_BATCH", 20))
HOSTILE_EVERY = _env("BENCH_SOAK_HOSTILE_EVERY", 0.5)
SAMPLE_EVERY = _env("BENCH_SOAK_SAMPLE_EVERY", 5)
STORE = os.environ.get("BENCH_SOAK_STORE", "embedded")
#: hostile kinds to send (comma separated); empty: every kind
HOSTILE_KINDS = os.environ.get("BENCH_SOAK_HOSTILE", "")
IN_FLIGHT = 8
#: a hostile call taking longer than this counts as DEADLINE_EXCEEDED
HOSTILE_TIMEOUT = 30.0
#: the server answering no health check for this long ends the soak early
HUNG_AFTER = 120.0
QUEUE_DB = 13
PARENT = "tenants/admin"
PAGE = os.sysconf("SC_PAGE_SIZE")
#: normal event types, by share of each batch (tenths)
MIX = ["soak.python"] * 7 + ["soak.http"] * 2 + ["soak.wasm"]
WASM_SOURCE = "export default function ({ data }) { return { n: data.n * 2, region: data.region }; }"


# --- process samples --------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


@dataclass
class Sample:
    at: float  # seconds since the soak's start (warm-up included)
    rss: int
    fds: int


@dataclass
class Tally:
    """Outcomes of one kind of request, by gRPC status code, overall and per variant."""

    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest: float = 0.0
    variants: dict[str, collections.Counter[str]] = field(default_factory=dict)
    variant_slowest: dict[str, float] = field(default_factory=dict)
    #: the first answer's details per (variant, code) other than OK
    details: dict[tuple[str, str], str] = field(default_factory=dict)

    def record(self, code: str, seconds: float, variant: str = "", details: str = "") -> None:
        self.codes[code] += 1
        self.slowest = max(self.slowest, seconds)
        self.variants.setdefault(variant, collections.Counter())[code] += 1
        self.variant_slowest[variant] = max(self.variant_slowest.get(variant, 0.0), seconds)
        if details:
            self.details.setdefault((variant, code), " ".join(details.split())[:140])

    def odd(self) -> list[str]:
        """``variant: CODE, n times: 'details'`` of INTERNAL / UNKNOWN answers."""
        return [
            f"{variant}: {code}, {self.variants[variant][code]} times: {text!r}"
            for (variant, code), text in self.details.items()
            if code in ("INTERNAL", "UNKNOWN")
        ]


@dataclass
class Soak:
    samples: list[Sample] = field(default_factory=list)
    warm_at: float = 0.0  # when the measured period began (seconds since start)
    offered: int = 0
    accepted: int = 0
    skipped_batches: int = 0
    normal: Tally = field(default_factory=Tally)
    reads: Tally = field(default_factory=Tally)
    hostile: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    health_ms: list[float] = field(default_factory=list)
    health_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    died: str = ""
    hung: str = ""
    measured_seconds: float = 0.0
    final_at_warm: int = 0
    final_at_end: int = 0
    accepted_at_warm: int = 0
    drained: int = 0
    by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    #: a sample once the load stopped and the backlog drained
    at_rest: Sample | None = None
    notes: list[str] = field(default_factory=list)


# --- actions ------------------------------------------------------------------------------------


def _action(event_type: str, handler: dict[str, object], **extra: object) -> actions_pb2.Action:
    body: dict[str, object] = {"trigger": {"event_types": [event_type]}, "handler": handler, **extra}
    return json_format.ParseDict(body, actions_pb2.Action())


async def _create_normal_actions(channel: grpc.aio.Channel, receiver_port: int) -> None:
    stub = actions_pb2_grpc.ActionServiceStub(channel)
    actions = {
        "soak-python": _action("soak.python", {"type": "python", "config": {"function": "bench.handlers:soak"}}),
        "soak-http": _action(
            "soak.http",
            {"type": "http", "config": {"url": f"http://127.0.0.1:{receiver_port}/soak/{{{{ data.n }}}}"}},
        ),
        "soak-wasm": _action(
            "soak.wasm", {"type": "wasm", "config": {"language": "javascript", "source": WASM_SOURCE}}
        ),
    }
    for action_id, action in actions.items():
        await stub.CreateAction(
            actions_pb2.CreateActionRequest(parent=PARENT, action_id=action_id, action=action), timeout=60
        )


# --- normal load --------------------------------------------------------------------------------


def _batch(first: int) -> events_pb2.PublishEventsRequest:
    return events_pb2.PublishEventsRequest(
        parent=PARENT,
        events=[
            events_pb2.Event(
                type=MIX[n % len(MIX)],
                source="soak",
                data_json=json.dumps({"n": n, "order_id": f"o-{n}", "amount": 120.5, "region": "eu"}),
            )
            for n in range(first, first + BATCH)
        ],
    )


async def _publish_load(channel: grpc.aio.Channel, soak: Soak, until: asyncio.Event) -> None:
    stub = events_pb2_grpc.EventServiceStub(channel)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(request: events_pb2.PublishEventsRequest) -> None:
        started = time.monotonic()
        try:
            response = await stub.PublishEvents(request, timeout=60)
            soak.accepted += len(response.results)
            soak.normal.record("OK", time.monotonic() - started)
        except grpc.aio.AioRpcError as exc:
            soak.normal.record(exc.code().name, time.monotonic() - started, "publish", exc.details() or "")

    interval = BATCH / RATE
    next_at = time.monotonic()
    seq = itertools.count(0, BATCH)
    while not until.is_set():
        if len(in_flight) >= IN_FLIGHT:
            soak.skipped_batches += 1
        else:
            soak.offered += BATCH
            task = asyncio.create_task(one(_batch(next(seq))))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay < -1.0:  # far behind (a stalled loop here): start the schedule again from now
            next_at = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), max(0.0, delay))
    if in_flight:
        await asyncio.wait(in_flight, timeout=90)


async def _read_load(channel: grpc.aio.Channel, soak: Soak, until: asyncio.Event) -> None:
    events = events_pb2_grpc.EventServiceStub(channel)
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: events.ListEvents(events_pb2.ListEventsRequest(parent=PARENT, page_size=100), timeout=60),
        lambda: executions.ListExecutions(
            executions_pb2.ListExecutionsRequest(parent=PARENT, page_size=100), timeout=60
        ),
    ]
    while not until.is_set():
        for call in calls:
            started = time.monotonic()
            try:
                await call()
                soak.reads.record("OK", time.monotonic() - started)
            except grpc.aio.AioRpcError as exc:
                soak.reads.record(exc.code().name, time.monotonic() - started, "list", exc.details() or "")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), 1.0)


# --- hostile requests ---------------------------------------------------------------------------

Call = Callable[[grpc.aio.Channel], Awaitable[object]]


def _publish(data_json: str = "{}", parent: str = PARENT, **fields: str) -> Call:
    event = events_pb2.Event(type=fields.pop("type", "soak.hostile"), source="soak", data_json=data_json, **fields)

    def call(ch: grpc.aio.Channel) -> Awaitable[object]:
        stub = events_pb2_grpc.EventServiceStub(ch)
        return stub.PublishEvents(
            events_pb2.PublishEventsRequest(parent=parent, events=[event]), timeout=HOSTILE_TIMEOUT
        )

    return call


def _raw(method: str, payload: bytes) -> Call:
    def call(ch: grpc.aio.Channel) -> Awaitable[object]:
        # no serializers: the bytes go on the wire as they are
        return ch.unary_unary(method)(payload, timeout=HOSTILE_TIMEOUT)

    return call


def _save_then_publish(action_id: str, action: dict[str, object], event_type: str, data_json: str) -> Call:
    """Save a hostile action; if the server takes it, publish one event it matches (so its
    templates / conditions are evaluated for real), then delete it."""

    async def call(ch: grpc.aio.Channel) -> object:
        stub = actions_pb2_grpc.ActionServiceStub(ch)
        unique = f"{action_id}-{uuid.uuid4().hex[:8]}"
        await stub.CreateAction(
            actions_pb2.CreateActionRequest(
                parent=PARENT, action_id=unique, action=json_format.ParseDict(action, actions_pb2.Action())
            ),
            timeout=HOSTILE_TIMEOUT,
        )
        try:
            if event_type:
                await _publish(data_json, type=event_type)(ch)
        finally:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.DeleteAction(
                    actions_pb2.DeleteActionRequest(name=f"{PARENT}/actions/{unique}"), timeout=HOSTILE_TIMEOUT
                )
        return None

    return call


def _pb_string(tag: int, value: bytes) -> bytes:
    """A length-delimited protobuf field (lengths < 2**21)."""
    n, out = len(value), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([tag << 3 | 2]) + bytes(out) + value


def _hostile_kinds(receiver_port: int) -> dict[str, list[tuple[str, Call]]]:
    deep = 100_000
    url = f"http://127.0.0.1:{receiver_port}/hostile/"
    xs = json.dumps({"xs": list(range(1000))})
    events_svc, actions_svc = "/neoactions.v1.EventService", "/neoactions.v1.ActionService"
    bad_utf8_event = _pb_string(2, _pb_string(3, b"soak.\xff\xfe") + _pb_string(9, b'{"a": "\xed\xa0\x80"}'))
    bad_utf8_request = _pb_string(1, PARENT.encode()) + bad_utf8_event
    truncated = b"\x0a\xff\xff\xff\x0f" + b"x" * 16  # field 1 claims ~4 GB, 16 bytes follow
    huge_list = "[" + ",".join(str(i) for i in range(2000)) + "]"
    loops = "{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"
    map3_data = "data.xs.map(a, data.xs.map(b, data.xs.map(c, a + b + c))).size() > 0"
    map3_literal = f"{huge_list}.map(a, {huge_list}.map(b, {huge_list}.map(c, a))).size() > 0"

    def template(name: str, text: str, data_json: str = "{}") -> Call:
        """An http action whose URL renders ``text``; one event of its own type runs it."""
        event_type = f"soak.hostile.{name.replace('-', '_')}"
        action = {
            "trigger": {"event_types": [event_type]},
            "handler": {"type": "http", "config": {"url": url + text}},
        }
        return _save_then_publish(name, action, event_type, data_json)

    def cel(name: str, expression: str, data_json: str = "{}") -> Call:
        """A python action whose trigger condition is ``expression``; one event is matched against it."""
        event_type = f"soak.hostile.{name.replace('-', '_')}"
        action = {
            "trigger": {"event_types": [event_type], "conditions": [{"cel": expression}]},
            "handler": {"type": "python", "config": {"function": "bench.handlers:soak"}},
        }
        return _save_then_publish(name, action, event_type, data_json)

    def python_action(function: str) -> dict[str, object]:
        return {
            "trigger": {"event_types": ["soak.hostile.never"]},
            "handler": {"type": "python", "config": {"function": function}},
        }

    def tenant(tenant_id: str) -> Call:
        def call(ch: grpc.aio.Channel) -> Awaitable[object]:
            return tenants_pb2_grpc.TenantServiceStub(ch).CreateTenant(
                tenants_pb2.CreateTenantRequest(tenant_id=tenant_id), timeout=HOSTILE_TIMEOUT
            )

        return call

    def list_events(page_size: int, parent: str = PARENT) -> Call:
        def call(ch: grpc.aio.Channel) -> Awaitable[object]:
            return events_pb2_grpc.EventServiceStub(ch).ListEvents(
                events_pb2.ListEventsRequest(parent=parent, page_size=page_size), timeout=HOSTILE_TIMEOUT
            )

        return call

    def list_executions(page_size: int) -> Call:
        def call(ch: grpc.aio.Channel) -> Awaitable[object]:
            return executions_pb2_grpc.ExecutionServiceStub(ch).ListExecutions(
                executions_pb2.ListExecutionsRequest(parent=PARENT, page_size=page_size), timeout=HOSTILE_TIMEOUT
            )

        return call

    return {
        "nested_json": [
            ("arrays 100k deep", _publish("[" * deep + "]" * deep)),
            ("objects 40k deep", _publish('{"a":' * 40_000 + "1" + "}" * 40_000)),
            ("metadata 100k deep", _publish("{}", metadata_json="[" * deep + "]" * deep)),
        ],
        "huge_string": [
            ("250 KB string in data (under the limit)", _publish(json.dumps({"s": "x" * 250_000}))),
            ("3 MB string in data", _publish(json.dumps({"s": "x" * 3_000_000}))),
            ("8 MB string in data", _publish(json.dumps({"s": "x" * 8_000_000}))),
            ("1 MB event type", _publish("{}", type="t" * 1_000_000)),
            ("1 MB parent", _publish("{}", parent="tenants/" + "a" * 1_000_000)),
        ],
        "lone_surrogate": [
            ("\\ud800 in data", _publish('{"s": "\\ud800"}')),
            ("\\udfff key in metadata", _publish("{}", metadata_json='{"\\udfff": 1}')),
            ("surrogate pair split", _publish('{"s": "\\ud83d x \\ude00"}')),
        ],
        "raw_bytes": [
            ("64 KB random → PublishEvents", _raw(f"{events_svc}/PublishEvents", os.urandom(65536))),
            ("invalid UTF-8 in string fields", _raw(f"{events_svc}/PublishEvents", bad_utf8_request)),
            ("truncated field → CreateAction", _raw(f"{actions_svc}/CreateAction", truncated)),
            ("random → ListEvents", _raw(f"{events_svc}/ListEvents", os.urandom(512))),
        ],
        "template_bomb": [
            ("range(10**8)", template("tpl-range", "{{ range(10**8)|list|length }}")),
            ("9**(9**9)", template("tpl-pow", "{{ 9**(9**9) }}")),
            ("'x' * 10**9", template("tpl-mul", "{{ 'x' * 10**9 }}")),
            ("data.b ** data.e", template("tpl-datapow", "{{ data.b ** data.e }}", '{"b": 7, "e": 900000000}')),
            ("nested loops 10**10", template("tpl-loops", loops)),
        ],
        "cel_bomb": [
            ("map³ over data (1,000 items)", cel("cel-data", map3_data, xs)),
            ("map³ over a 2,000-item literal", cel("cel-literal", map3_literal)),
            ("string doubling", cel("cel-str", "data.xs.map(a, string(data.xs) + string(data.xs)).size() > 0", xs)),
        ],
        "unsafe_function": [
            ("unittest:main", _save_then_publish("fn-unittest", python_action("unittest:main"), "", "")),
            ("os:system", _save_then_publish("fn-os", python_action("os:system"), "", "")),
            ("builtins:exec", _save_then_publish("fn-exec", python_action("builtins:exec"), "", "")),
            ("subprocess:run", _save_then_publish("fn-subprocess", python_action("subprocess:run"), "", "")),
        ],
        "tenant_name": [
            ("CreateTenant 'soak\\nevil'", tenant("soak\nevil")),
            ("CreateTenant 'soak\\r\\n\\x00'", tenant("soak\r\n\x00")),
            ("publish to 'tenants/admin\\n'", _publish("{}", parent="tenants/admin\n")),
            ("ListEvents of 'tenants/a\\nb'", list_events(100, parent="tenants/a\nb")),
        ],
        "huge_page": [
            ("ListEvents page_size 2**31-1", list_events(2**31 - 1)),
            ("ListExecutions page_size 2**31-1", list_executions(2**31 - 1)),
            ("ListEvents page_size -1", list_events(-1)),
        ],
    }


async def _hostile_load(
    channel: grpc.aio.Channel, soak: Soak, until: asyncio.Event, kinds: dict[str, list[tuple[str, Call]]]
) -> None:
    if not kinds:
        return
    # round robin over kinds, and within a kind over its variants
    turns = {kind: itertools.cycle(variants) for kind, variants in kinds.items()}
    kind_cycle = itertools.cycle(list(kinds))
    while not until.is_set():
        kind = next(kind_cycle)
        variant, call = next(turns[kind])
        started = time.monotonic()
        try:
            answer = await call(channel)
            items = getattr(answer, "events", None) or getattr(answer, "executions", None)
            note = f"{len(items)} items" if items is not None else ""
            soak.hostile[kind].record("OK", time.monotonic() - started, variant, note)
        except grpc.aio.AioRpcError as exc:
            soak.hostile[kind].record(exc.code().name, time.monotonic() - started, variant, exc.details() or "")
        except Exception as exc:  # the client refused to send it (e.g. a string protobuf will not encode)
            soak.hostile[kind].record(f"client: {type(exc).__name__}", time.monotonic() - started, variant)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), HOSTILE_EVERY)


# --- watching the server ------------------------------------------------------------------------


async def _watch(srv: Listening, soak: Soak, t0: float, until: asyncio.Event, stop_all: asyncio.Event) -> None:
    """Health checks every second, RSS and fds every SAMPLE_EVERY; ends the soak if the server
    exits or answers nothing for HUNG_AFTER seconds."""
    assert srv.proc is not None
    last_answer = time.monotonic()
    next_sample = 0.0
    async with authorized_channel(srv.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not until.is_set():
            now = time.monotonic()
            if srv.proc.poll() is not None:
                soak.died = f"exited with code {srv.proc.returncode} at {now - t0:.0f} s"
                stop_all.set()
                return
            if now >= next_sample:
                soak.samples.append(Sample(now - t0, rss_bytes(srv.pid), open_fds(srv.pid)))
                next_sample = now + SAMPLE_EVERY
            started = time.monotonic()
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                soak.health_ms.append((time.monotonic() - started) * 1000)
                last_answer = time.monotonic()
            except grpc.aio.AioRpcError as exc:
                soak.health_failures[exc.code().name] += 1
                if time.monotonic() - last_answer > HUNG_AFTER:
                    soak.hung = f"no health answer for {HUNG_AFTER:.0f} s at {time.monotonic() - t0:.0f} s"
                    stop_all.set()
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), max(0.0, 1.0 - (time.monotonic() - started)))


# --- the run --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _store(tmp: Path) -> AsyncIterator[tuple[str, Probe, dict[str, str]]]:
    if STORE == "embedded":
        data = tmp / "data"
        probe: Probe = SqliteProbe(data)
        try:
            yield str(data), probe, {}
        finally:
            await probe.close()
        return
    async with fresh_database() as (db, url):
        prefix = f"neoactions-soak-{uuid.uuid4().hex[:8]}"
        probe = PostgresProbe(url, db)
        try:
            yield url, probe, {"redis_url": f"{REDIS_BASE}/{QUEUE_DB}", "queue_prefix": prefix}
        finally:
            await probe.close()
            r = redis.Redis.from_url(f"{REDIS_BASE}/{QUEUE_DB}")
            keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                r.delete(*keys)
            r.close()


async def _by_status(probe: Probe, store_url: str) -> dict[tuple[str, str], int]:
    """Executions by action and status; a hostile action's name without its unique suffix."""
    q = "SELECT action_name, status, count(*) FROM {t} GROUP BY 1, 2"
    if isinstance(probe, PostgresProbe):
        import asyncpg

        conn = await asyncpg.connect(store_url)
        try:
            rows = [tuple(r) for r in await conn.fetch(q.format(t="admin.executions"))]
        finally:
            await conn.close()
    else:
        import sqlite3

        db = sqlite3.connect(f"file:{Path(store_url) / 'admin.db'}?mode=ro", uri=True)
        try:
            rows = list(db.execute(q.format(t="executions")))
        finally:
            db.close()
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for name, status, n in rows:
        out[(name if name.startswith("soak-") else f"hostile {name.rsplit('-', 1)[0]}", status)] += int(n)
    return dict(out)


async def _soak(tmp: Path, soak: Soak) -> None:
    wanted = [k for k in HOSTILE_KINDS.split(",") if k]
    receiver = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
        [sys.executable, "-m", "bench.bench_webhook", "--serve"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        async with _store(tmp) as (store_url, probe, extra):
            srv = server(
                store_url,
                tmp / "server.log",
                tmp / "starts.txt",
                python_handler_modules="bench",
                runner_settings=json.dumps({"http_allow_networks": ["127.0.0.0/8"]}),
                **extra,
            )
            srv.start()
            try:
                await _run(srv, probe, store_url, port, soak, wanted)
            finally:
                srv.stop()
                log = (tmp / "server.log").read_text(errors="replace")
                tracebacks = log.count("Traceback")
                if tracebacks:
                    soak.notes.append(f"server log: {tracebacks} tracebacks")
    finally:
        receiver.terminate()
        receiver.wait(10)


async def _run(srv: Listening, probe: Probe, store_url: str, port: int, soak: Soak, wanted: list[str]) -> None:
    kinds = _hostile_kinds(port)
    if wanted:
        kinds = {k: v for k, v in kinds.items() if k in wanted}
    t0 = time.monotonic()
    until, stop_all = asyncio.Event(), asyncio.Event()
    async with authorized_channel(srv.target) as normal, authorized_channel(srv.target) as hostile:
        await _create_normal_actions(normal, port)
        tasks = [
            asyncio.create_task(_watch(srv, soak, t0, until, stop_all)),
            asyncio.create_task(_publish_load(normal, soak, until)),
            asyncio.create_task(_read_load(normal, soak, until)),
            asyncio.create_task(_hostile_load(hostile, soak, until, kinds)),
        ]
        stopper = asyncio.create_task(stop_all.wait())
        # warm-up, then the measured period
        await asyncio.wait([stopper], timeout=WARMUP)
        soak.warm_at = time.monotonic() - t0
        soak.accepted_at_warm, soak.final_at_warm = soak.accepted, await probe.final_count()
        cpu0 = cpu_seconds(srv.pid)
        await asyncio.wait([stopper], timeout=SECONDS)
        soak.measured_seconds = time.monotonic() - t0 - soak.warm_at
        soak.final_at_end = await probe.final_count()
        soak.cpu_seconds = cpu_seconds(srv.pid) - cpu0
        until.set()
        stopper.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if srv.proc is not None and srv.proc.poll() is None:
            soak.drained = await probe.wait_final(soak.accepted, within=60)
            soak.by_status = await _by_status(probe, store_url)
            soak.at_rest = Sample(time.monotonic() - t0, rss_bytes(srv.pid), open_fds(srv.pid))


# --- report ---------------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def _report(soak: Soak, took: float, loads: list[str]) -> str:
    lines = [
        f"store: {STORE}; warm-up {WARMUP:g} s, measured {soak.measured_seconds:,.0f} s (asked {SECONDS:g} s); "
        f"normal load offered {RATE:g} events/s in batches of {BATCH} (python 70 %, http 20 %, wasm 10 %) "
        f"+ 2 list calls/s; one hostile request every {HOSTILE_EVERY:g} s ({HOSTILE_KINDS or 'every kind'}); "
        f"took {took:,.0f} s.  ",
        f"load average: {'; '.join(loads)}.",
        "",
    ]
    up = "yes" if not (soak.died or soak.hung) else f"**no** — {soak.died or soak.hung}"
    lines += [f"server stayed up and answering: {up}", ""]

    warm = [s for s in soak.samples if s.at >= soak.warm_at]
    if len(warm) >= 6:
        lines += _rss_report(soak, warm)
    done = soak.final_at_end - soak.final_at_warm
    accepted = soak.accepted - soak.accepted_at_warm
    per_s = soak.measured_seconds or 1.0
    lines += [
        "| normal load | value |",
        "|---|---:|",
        f"| events accepted / s (measured period) | {accepted / per_s:,.1f} |",
        f"| executions final / s (measured period) | {done / per_s:,.1f} |",
        f"| batches skipped (8 calls still in flight) | {soak.skipped_batches:,} |",
        f"| publish calls by code | {_codes(soak.normal.codes)} (slowest {soak.normal.slowest * 1000:,.0f} ms) |",
        f"| list calls by code | {_codes(soak.reads.codes)} (slowest {soak.reads.slowest * 1000:,.0f} ms) |",
        f"| server CPU, measured period | {soak.cpu_seconds / per_s * 100:,.0f} % of a core |",
        f"| executions final 60 s after the load stopped | {soak.drained:,} (events accepted: {soak.accepted:,}) |",
    ]
    if soak.by_status:
        by = ", ".join(f"{h or '?'} {s} {n:,}" for (h, s), n in sorted(soak.by_status.items()))
        lines.append(f"| executions by action and status (whole run) | {by} |")
    if soak.health_ms:
        q = statistics.quantiles(soak.health_ms, n=100) if len(soak.health_ms) > 1 else soak.health_ms * 99
        failures = ", ".join(f"{c} {n}" for c, n in soak.health_failures.items()) or "none"
        lines.append(
            f"| health check ms p50 / p99 / max (every second) | {q[49]:.1f} / {q[98]:.1f} / "
            f"{max(soak.health_ms):,.0f}; failures: {failures} |"
        )
    lines += ["", "| hostile kind | requests | outcomes by code | slowest ms |", "|---|---:|---|---:|"]
    odd: list[str] = []
    for kind, tally in soak.hostile.items():
        total, slowest = sum(tally.codes.values()), tally.slowest * 1000
        lines.append(f"| {kind} | {total:,} | {_codes(tally.codes)} | {slowest:,.0f} |")
        odd += [f"{kind} — {o}" for o in tally.odd()]
    odd += [f"normal — {o}" for o in soak.normal.odd() + soak.reads.odd()]
    lines += ["", "INTERNAL / UNKNOWN answers: " + ("none" if not odd else "")]
    lines += [f"- {o}" for o in odd]
    lines += [
        "",
        "| hostile request | outcomes | slowest ms | first answer (details) |",
        "|---|---|---:|---|",
    ]
    for kind, tally in soak.hostile.items():
        for variant, codes in tally.variants.items():
            text = "; ".join(f"{c}: {t}" for (v, c), t in tally.details.items() if v == variant)
            text = text.replace("|", "\\|")
            slowest = tally.variant_slowest[variant] * 1000
            lines.append(f"| {kind}: {variant} | {_codes(codes)} | {slowest:,.0f} | {text} |")
    if soak.notes:
        lines += ["", "notes: " + "; ".join(soak.notes)]
    return "\n".join(lines)


def _rss_report(soak: Soak, warm: list[Sample]) -> list[str]:
    """RSS judged by level, not by single samples: the median of the first tenth of the
    measured period against the median of the last tenth (a hostile request holding a few
    MB for a moment is a spike, not growth); the peak and a least-squares slope beside."""
    tenth = max(3, len(warm) // 10)
    base = statistics.median(s.rss for s in warm[:tenth])
    end = statistics.median(s.rss for s in warm[-tenth:])
    peak = max(s.rss for s in warm)
    drift = (end - base) / base
    xs, ys = [s.at for s in warm], [s.rss for s in warm]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (sum((x - mx) ** 2 for x in xs) or 1)
    verdict = "**flat within 10 %**" if abs(drift) <= 0.10 else f"**not flat**: {100 * drift:+.1f} %"
    rest = f"{_mb(soak.at_rest.rss)}" if soak.at_rest else "—"
    lines = [
        "| RSS after warm-up MB (median, first tenth) | at the end MB (median, last tenth) | drift | verdict "
        "| peak MB | slope MB/h | at rest after the load MB | open fds first → last |",
        "|---:|---:|---:|---|---:|---:|---:|---|",
        f"| {_mb(base)} | {_mb(end)} | {100 * drift:+.1f} % | {verdict} | {_mb(peak)} "
        f"| {slope * 3600 / 2**20:+,.1f} | {rest} | {warm[0].fds} → {warm[-1].fds} |",
        "",
    ]
    windows = [warm[i : i + tenth] for i in range(0, len(warm), tenth)]
    warmup = [s.rss for s in soak.samples if s.at < soak.warm_at]
    lines.append(
        "RSS by tenth of the measured period (median / max MB): "
        + ", ".join(
            f"{w[0].at - soak.warm_at:,.0f}-{w[-1].at - soak.warm_at:,.0f} s "
            f"{_mb(statistics.median(s.rss for s in w))} / {_mb(max(s.rss for s in w))}"
            for w in windows
        )
        + (f"; during the warm-up {_mb(min(warmup))} → {_mb(warmup[-1])}." if warmup else ".")
    )
    lines.append("")
    return lines


def _codes(codes: collections.Counter[str]) -> str:
    return ", ".join(f"{code} {n:,}" for code, n in codes.most_common()) or "—"


def main() -> str:
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="neoactions-bench-soak-"))
    soak = Soak()
    loads = [f"start {load_average()}"]
    t = time.monotonic()
    try:
        asyncio.run(_soak(tmp, soak))
    finally:
        loads.append(f"end {load_average()}")
        if os.environ.get("BENCH_KEEP_TMP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return _report(soak, time.monotonic() - t, loads)


if __name__ == "__main__":
    print(main())
