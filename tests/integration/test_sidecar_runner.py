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

from neoactions.plugins.sdk import Handler, HandlerContext, HandlerError, handler, start_server
from neoactions.sandboxes.sidecar import SidecarRunner
from neoactions.sandboxes.sidecar import register as register_sidecar
from neoactions.server.errors import InvalidArgument
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


@pytest.fixture
async def runner() -> AsyncIterator[SidecarRunner]:
    r = SidecarRunner(health_interval=60)
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
        assert "not serving" in down.error.message
    finally:
        await server.stop(None)


async def test_unix_socket_address(tmp_path: Path, runner: SidecarRunner) -> None:
    address = f"unix:{tmp_path / 'h.sock'}"
    server, _ = await start_server(inventory, address)
    try:
        result = (await collect(runner, {"address": address, "config": {"warehouse": "u"}}, {"qty": 1}, context()))[-1]
        assert isinstance(result, Result) and result.output["warehouse"] == "u"
    finally:
        await server.stop(None)


def test_config_schema() -> None:
    registry = HandlerRegistry()
    register_sidecar(registry)
    ht = registry.get("sidecar")
    ht.check_config({"address": "10.0.0.7:50071", "config": {"a": 1}})
    ht.check_config({"address": "unix:/run/h.sock"})
    ht.check_config({"address": "[::1]:9000"})
    for bad in ({}, {"address": "no-port"}, {"address": "h:1", "extra": True}, {"address": "h:1", "config": []}):
        with pytest.raises(InvalidArgument):
            ht.check_config(bad)


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
