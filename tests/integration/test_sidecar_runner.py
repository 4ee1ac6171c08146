"""The ``sidecar`` handler type against real Handler servers: the Python SDK in-process,
and the Node.js SDK's example handler in a child process."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from neoactions.domain.errors import InvalidArgument
from neoactions.plugins.sdk import Handler, HandlerContext, HandlerError, handler, start_server
from neoactions.sandboxes.sidecar import SidecarRunner
from neoactions.sandboxes.sidecar import register as register_sidecar
from neoactions.sandboxes.sidecar.address import SidecarPolicy
from neoactions.sandboxes.sidecar.client import unavailable_message
from neoactions.server.runners import Failure, HandlerRegistry, Log, Progress, Result
from tests.conftest import port_open
from tests.integration.dockerenv import collect, context
from tests.integration.dockerenv import node_sdk as node_sdk  # the fixture


class Recorder(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Keeps the metadata of every call the server receives."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        self.metadata.append({k: str(v) for k, v in details.invocation_metadata or ()})
        return await continuation(details)


cancelled = asyncio.Event()


@handler(
    name="inventory",
    version="2.1.0",
    description="Reserves stock",
    config_schema={
        "type": "object",
        "required": ["warehouse"],
        "properties": {"warehouse": {"type": "string"}},
    },
    capabilities=["streaming-logs"],
)
async def inventory(config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
    if data.get("sleep"):
        try:
            await asyncio.sleep(data["sleep"])
        except asyncio.CancelledError:
            cancelled.set()
            raise
    if data.get("fail") == "quota":
        raise HandlerError("out of quota", type="quota_exceeded", retryable=False)
    if data.get("fail") == "crash":
        raise KeyError("sku")
    ctx.log(f"reserving {data['qty']} in {config['warehouse']}")
    ctx.progress(0.5, "reserved")
    return {
        "reserved": data["qty"],
        "warehouse": config["warehouse"],
        "tenant": ctx.tenant,
        "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key,
        "trace": ctx.trace_context,
        "remaining": ctx.remaining_seconds(),
    }


class SyncHandler(Handler):
    """A class-based handler with sync code (runs in a worker thread) and a health switch."""

    def __init__(self) -> None:
        super().__init__(name="sync", version="1.0.0")
        self.healthy = True

    def execute(self, config: dict[str, Any], data: Any, ctx: HandlerContext) -> Any:
        ctx.log("from a thread")
        return {"thread": threading.current_thread().name != "MainThread", "sum": sum(data)}

    def check(self) -> bool:
        return self.healthy


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    server, port = await start_server(inventory, "127.0.0.1:0", interceptors=[recorder])
    try:
        yield f"127.0.0.1:{port}", recorder
    finally:
        await server.stop(None)


#: the operator's allow-list the tests need: their handlers listen on loopback
LOOPBACK = {"http_allow_networks": ["127.0.0.0/8", "::1/128"]}


@pytest.fixture
async def runner() -> AsyncIterator[SidecarRunner]:
    r = SidecarRunner(health_interval=60, policy=SidecarPolicy.from_settings(LOOPBACK))
    try:
        yield r
    finally:
        await r.aclose()


async def test_execute_streams_logs_progress_and_result(served: Any, runner: SidecarRunner) -> None:
    address, recorder = served
    ctx = context(5, attempt=2)
    config = {"address": address, "config": {"warehouse": "ams-1"}}
    updates = await collect(runner, config, {"qty": 3}, ctx)
    assert updates[:2] == [Log("reserving 3 in ams-1"), Progress(0.5, "reserved")]
    result = updates[-1]
    assert isinstance(result, Result) and len(updates) == 3
    out = result.output
    assert (out["reserved"], out["warehouse"], out["tenant"], out["attempt"]) == (3, "ams-1", "acme", 2)
    assert out["idempotency_key"] == ctx.idempotency_key
    assert out["trace"]["traceparent"] == ctx.trace_context["traceparent"]
    assert 3.5 < out["remaining"] <= 5.0, "the attempt's deadline reaches the handler"
    execute_md = [md for md in recorder.metadata if "x-neoactions-execution-id" in md]
    assert execute_md and execute_md[-1]["traceparent"] == ctx.trace_context["traceparent"]
    assert execute_md[-1]["x-neoactions-execution-id"] == ctx.execution_id


async def test_channel_is_reused_and_health_checked_once_per_interval(served: Any, runner: SidecarRunner) -> None:
    address, recorder = served
    config = {"address": address, "config": {"warehouse": "w"}}
    for qty in range(4):
        assert isinstance((await collect(runner, config, {"qty": qty}, context()))[-1], Result)
    assert runner.client(address) is runner.client(address)
    methods_seen = len(recorder.metadata)
    assert methods_seen == 4 + 1 + 1, "4 Execute calls, one Check, one Describe on one channel"


async def test_handler_errors_keep_their_classification(served: Any, runner: SidecarRunner) -> None:
    address, _ = served
    config = {"address": address, "config": {"warehouse": "w"}}
    quota = (await collect(runner, config, {"fail": "quota"}, context()))[-1]
    assert isinstance(quota, Failure)
    assert (quota.error.type, quota.error.message, quota.error.retryable) == ("quota_exceeded", "out of quota", False)
    crash = (await collect(runner, config, {"fail": "crash"}, context()))[-1]
    assert isinstance(crash, Failure) and crash.error.type == "KeyError" and crash.error.retryable
    assert "Traceback" in crash.error.stack


async def test_config_is_validated_against_the_handlers_own_schema(served: Any, runner: SidecarRunner) -> None:
    address, _ = served
    failure = (await collect(runner, {"address": address, "config": {}}, {"qty": 1}, context()))[-1]
    assert isinstance(failure, Failure) and failure.error.type == "invalid_config" and not failure.error.retryable
    assert "warehouse" in failure.error.message


async def test_deadline_is_propagated_and_the_handler_cancelled(served: Any, runner: SidecarRunner) -> None:
    address, _ = served
    cancelled.clear()
    started = time.monotonic()
    failure = (await collect(runner, {"address": address, "config": {"warehouse": "w"}}, {"sleep": 30}, context(1.0)))[
        -1
    ]
    assert time.monotonic() - started < 1.5
    assert isinstance(failure, Failure) and failure.timed_out and failure.error.type == "timeout"
    await asyncio.wait_for(cancelled.wait(), 5)  # the server saw the deadline pass and stopped the handler


async def test_unreachable_or_unhealthy_handler_is_a_retryable_failure(runner: SidecarRunner) -> None:
    with socket_port() as port:
        pass  # a port nobody listens on any more
    failure = (await collect(runner, {"address": f"127.0.0.1:{port}"}, {}, context(3)))[-1]
    assert isinstance(failure, Failure) and failure.error.type == "handler_unavailable" and failure.error.retryable

    sync = SyncHandler()
    server, port = await start_server(sync, "127.0.0.1:0")
    try:
        address = f"127.0.0.1:{port}"
        ok = await collect(runner, {"address": address}, [1, 2, 3], context())
        assert ok[0] == Log("from a thread") and ok[-1] == Result({"thread": True, "sum": 6})
        sync.healthy = False
        runner.client(address).health_interval = 0  # check before every call
        down = (await collect(runner, {"address": address}, [1], context()))[-1]
        assert isinstance(down, Failure) and down.error.type == "handler_unavailable" and down.error.retryable
        assert down.error.message == unavailable_message(address)
    finally:
        await server.stop(None)


async def test_unix_socket_only_as_a_registered_endpoint(tmp_path: Path) -> None:
    address = f"unix:{tmp_path / 'h.sock'}"
    server, _ = await start_server(inventory, address)
    registered = SidecarRunner(policy=SidecarPolicy.from_settings({"sidecar_endpoints": [address]}))
    unregistered = SidecarRunner(policy=SidecarPolicy.from_settings(LOOPBACK))
    try:
        config = {"address": address, "config": {"warehouse": "u"}}
        result = (await collect(registered, config, {"qty": 1}, context()))[-1]
        assert isinstance(result, Result) and result.output["warehouse"] == "u"
        refused = (await collect(unregistered, config, {"qty": 1}, context()))[-1]
        assert isinstance(refused, Failure) and refused.error.type == "address_refused"
        assert "unix socket" in refused.error.message and unregistered.channels() == 0
    finally:
        await registered.aclose()
        await unregistered.aclose()
        await server.stop(None)


def test_config_schema() -> None:
    registry = HandlerRegistry(
        {"http_allow_networks": ["10.0.0.0/8", "::1/128"], "sidecar_endpoints": ["unix:/run/h.sock"]}
    )
    register_sidecar(registry)
    ht = registry.get("sidecar")
    ht.check_config({"address": "10.0.0.7:50071", "config": {"a": 1}})
    ht.check_config({"address": "unix:/run/h.sock"})
    ht.check_config({"address": "[::1]:9000"})
    ht.check_config({"address": "handlers.example.com:9000"})
    for bad in ({}, {"address": "no-port"}, {"address": "h:1", "extra": True}, {"address": "h:1", "config": []}):
        with pytest.raises(InvalidArgument):
            ht.check_config(bad)
    for refused in ("127.0.0.1:50051", "192.168.0.1:1", "unix:/var/run/docker.sock", "[::ffff:127.0.0.1]:1"):
        with pytest.raises(InvalidArgument) as err:
            ht.check_config({"address": refused})
        assert err.value.violations[0].field == "handler.config.address", refused


async def test_loopback_private_and_names_for_them_are_refused_by_default(served: Any) -> None:
    address, recorder = served
    port = address.rpartition(":")[2]
    strict = SidecarRunner()
    try:
        for target in (address, f"localhost:{port}", f"127.1:{port}", f"[::ffff:127.0.0.1]:{port}"):
            failure = (await collect(strict, {"address": target, "config": {"warehouse": "w"}}, {"qty": 1}, context()))[
                -1
            ]
            assert isinstance(failure, Failure) and failure.error.type == "address_refused", (target, failure)
            assert not failure.error.retryable
            assert "loopback" in failure.error.message or "IPv4-mapped" in failure.error.message
        assert recorder.metadata == [], "nothing reached the server"
        assert strict.channels() == 0
    finally:
        await strict.aclose()


class RawListener:
    """A TCP port that accepts connections and answers with ``reply`` (e.g. HTTP/1.1) or nothing."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await reader.read(1024)
            writer.write(self.reply)
            await writer.drain()
        finally:
            writer.close()


async def test_closed_open_and_non_grpc_ports_fail_alike(runner: SidecarRunner) -> None:
    """An action cannot tell a closed port from an open one: every way in gives one message."""
    messages: dict[str, tuple[str, str, bool]] = {}

    async def attempt(kind: str, address: str, **config: Any) -> None:
        failure = (await collect(runner, {"address": address, **config}, {}, context(3)))[-1]
        assert isinstance(failure, Failure), (kind, failure)
        assert not failure.timed_out, kind
        e = failure.error
        messages[kind] = (e.type, e.message.replace(address, "ADDRESS"), e.retryable)

    with socket_port() as port:
        pass
    await attempt("closed", f"127.0.0.1:{port}")
    await attempt("closed, no checks", f"127.0.0.1:{port}", check_health=False, validate_config=False)
    async with RawListener(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as http:
        await attempt("http/1.1", http)
    async with RawListener(b"SSH-2.0-OpenSSH_9.2\r\n") as ssh:
        await attempt("banner", ssh, check_health=False, validate_config=False)
    other = grpc.aio.server()
    other_port = other.add_insecure_port("127.0.0.1:0")  # a gRPC server without the Handler service
    await other.start()
    try:
        await attempt("grpc, no handler", f"127.0.0.1:{other_port}")
        await attempt(
            "grpc, no handler, no checks", f"127.0.0.1:{other_port}", check_health=False, validate_config=False
        )
    finally:
        await other.stop(None)
    sync = SyncHandler()
    sync.healthy = False
    server, handler_port = await start_server(sync, "127.0.0.1:0")
    try:
        await attempt("not serving", f"127.0.0.1:{handler_port}")
    finally:
        await server.stop(None)
    assert len(set(messages.values())) == 1, messages
    (only,) = set(messages.values())
    assert only == ("handler_unavailable", unavailable_message("ADDRESS"), True)


async def test_idle_channels_are_closed_and_stop_connecting() -> None:
    runner = SidecarRunner(policy=SidecarPolicy.from_settings(LOOPBACK), idle_seconds=0.3)
    listener = RawListener(b"")
    try:
        async with listener as address:
            failure = (await collect(runner, {"address": address}, {}, context(3)))[-1]
            assert isinstance(failure, Failure) and runner.channels() == 1
            end = time.monotonic() + 10
            while runner.channels():
                assert time.monotonic() < end, "the idle channel was not closed"
                await asyncio.sleep(0.05)
            seen = listener.accepted
            # longer than the longest reconnect backoff (2 s): a live channel would have come back
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                assert listener.accepted == seen, "a closed channel kept connecting"
                await asyncio.sleep(0.1)
    finally:
        await runner.aclose()


async def test_channels_are_capped_and_closed_with_the_runner(served: Any) -> None:
    address, _ = served
    runner = SidecarRunner(policy=SidecarPolicy.from_settings(LOOPBACK), max_channels=2)
    port = address.rpartition(":")[2]
    try:
        for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"):
            config = {"address": f"{host}:{port}", "config": {"warehouse": "w"}}
            await collect(runner, config, {"qty": 1}, context())
            assert runner.channels() <= 2
    finally:
        await runner.aclose()
    assert runner.channels() == 0


class socket_port:
    """A free TCP port (bound while inside the block)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.create_server(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- Node.js -------------------------------------------------------------------------


@pytest.fixture
def node_greeter(request: pytest.FixtureRequest) -> Iterator[str]:
    sdk: Path = request.getfixturevalue("node_sdk")
    with socket_port() as port:
        pass
    proc = subprocess.Popen(
        ["node", "example/greet.js", str(port)],
        cwd=sdk,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.search(r"serving at port \d+", line), line
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_nodejs_sidecar_executes_through_the_sidecar_handler_type(
    node_greeter: str, runner: SidecarRunner
) -> None:
    ctx = context(5, attempt=3)
    config = {"address": node_greeter, "config": {"salutation": "Hola"}}
    updates = await collect(runner, config, {"name": "Ada"}, ctx)
    assert updates[0] == Log("greeting Ada (attempt 3)")
    assert updates[1] == Progress(1.0, "greeted")
    result = updates[-1]
    assert isinstance(result, Result), updates
    out = result.output
    assert out["greeting"] == "Hola, Ada" and out["runtime"].startswith("node v")
    assert (out["tenant"], out["executionId"], out["idempotencyKey"]) == ("acme", ctx.execution_id, ctx.idempotency_key)
    assert out["traceparent"] == ctx.trace_context["traceparent"]
    assert 3000 < out["remainingMs"] <= 5000

    description = await runner.client(node_greeter).describe()
    assert (description.name, description.version) == ("greet", "1.0.0")

    refused = (await collect(runner, config, {"name": "Bob", "fail": True}, context()))[-1]
    assert isinstance(refused, Failure)
    assert (refused.error.type, refused.error.retryable) == ("refused", False)
    bad = (await collect(runner, {"address": node_greeter, "config": {"salutation": 7}}, {}, context()))[-1]
    assert isinstance(bad, Failure) and bad.error.type == "invalid_config"
    slow = (await collect(runner, config, {"sleepMs": 5000}, context(1.0)))[-1]
    assert isinstance(slow, Failure) and slow.timed_out
