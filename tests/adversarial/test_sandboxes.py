"""Hostile actions against the runners, through a real server: root containers, sidecars aimed at
loopback, unix sockets and the service itself, port scans through sidecar errors, channels that
never close, one tenant's wasm loops starving another's, guests asking for gigabytes."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)
from tests.adversarial.harness import assert_alive, start_server, stays_responsive
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"
K = executions_pb2.ExecutionUpdate
LOOPBACK = json.dumps({"http_allow_networks": ["127.0.0.0/8"], "sidecar_idle_seconds": 0.5})


def inline(handler_type: str, config: dict[str, Any], timeout: float = 30.0) -> executions_pb2.InlineAction:
    action = executions_pb2.InlineAction(handler=actions_pb2.Handler(type=handler_type), timeout_seconds=timeout)
    action.handler.config.update(config)
    return action


async def execute(channel: grpc.aio.Channel, action: executions_pb2.InlineAction, parent: str = ADMIN) -> Any:
    """The last update of an inline execution."""
    stub = executions_pb2_grpc.ExecutionServiceStub(channel)
    updates = [u async for u in stub.Execute(executions_pb2.ExecuteRequest(parent=parent, inline=action))]
    return updates[-1]


async def refused_at_save(channel: grpc.aio.Channel, handler_type: str, config: dict[str, Any]) -> str:
    """CreateAction must fail with INVALID_ARGUMENT; returns the message."""
    body = {"trigger": {"event_types": ["x.y"]}, "handler": {"type": handler_type, "config": config}}
    request = actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=f"a{time.monotonic_ns()}", action=json_format.ParseDict(body, actions_pb2.Action())
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await actions_pb2_grpc.ActionServiceStub(channel).CreateAction(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (config, err.value.details())
    return str(err.value.details())


@pytest.fixture
async def channel(hostile_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with authorized_channel(hostile_server.target) as ch:
        yield ch


class Listener:
    """A loopback TCP port that counts connections and answers them with ``reply``."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.accepted = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await reader.read(1024)
            writer.write(self.reply)
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


# -- containers -----------------------------------------------------------------------


@pytest.mark.parametrize("user", ["0", "00", "0000:0000", "0:65534", "65534:0", "root", "nobody", "1000:root"])
async def test_container_users_that_could_be_root_are_refused(channel: grpc.aio.Channel, user: str) -> None:
    message = await refused_at_save(channel, "container", {"image": "any:tag", "user": user})
    assert "handler.config.user" in message or "user" in message


# -- sidecars ---------------------------------------------------------------------------


async def test_sidecar_cannot_reach_loopback_unix_sockets_or_the_service(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    own = hostile_server.target  # the service's own gRPC port
    for address in (own, f"[::1]:{hostile_server.port}", "unix:/var/run/docker.sock", "169.254.169.254:80"):
        message = await refused_at_save(channel, "sidecar", {"address": address})
        assert "address" in message and ("http_allow_networks" in message or "sidecar_endpoints" in message)
    # names are resolved when the attempt runs, and what they resolve to is checked
    counted = Listener()
    async with counted as port:
        last = await execute(channel, inline("sidecar", {"address": f"localhost:{port}"}))
        assert last.kind == K.KIND_FAILED and last.error.type == "address_refused", last
        assert counted.accepted == 0, "the refused address was connected to"
    last = await execute(channel, inline("sidecar", {"address": f"localhost:{hostile_server.port}"}))
    assert last.kind == K.KIND_FAILED and last.error.type == "address_refused"
    await assert_alive(hostile_server)


@pytest.fixture(scope="module")
def loopback_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose operator allowed loopback (as a deployment with local sidecars would)."""
    with start_server(tmp_path_factory.mktemp("loopback"), {"NEOACTIONS_RUNNER_SETTINGS": LOOPBACK}) as server:
        yield server


async def test_sidecar_errors_do_not_tell_open_ports_from_closed(loopback_server: ServerProcess) -> None:
    other = grpc.aio.server()  # a gRPC server without the Handler service
    grpc_port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    seen: dict[str, tuple[str, str, bool]] = {}
    try:
        async with authorized_channel(loopback_server.target) as ch:

            async def attempt(kind: str, port: int, **config: Any) -> None:
                address = f"127.0.0.1:{port}"
                last = await execute(ch, inline("sidecar", {"address": address, **config}, timeout=5))
                assert last.kind == K.KIND_FAILED, (kind, last)
                seen[kind] = (last.error.type, last.error.message.replace(address, "A"), last.error.retryable)

            async with stays_responsive(loopback_server):
                await attempt("closed", free_port())
                await attempt("closed, no checks", free_port(), check_health=False, validate_config=False)
                async with Listener(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") as http:
                    await attempt("http", http)
                    await attempt("http, no checks", http, check_health=False, validate_config=False)
                async with Listener(b"220 smtp.example ESMTP\r\n") as smtp:
                    await attempt("smtp banner", smtp)
                await attempt("grpc, no handler", grpc_port)
                await attempt("grpc, no handler, no checks", grpc_port, check_health=False, validate_config=False)
                await attempt("the service itself", loopback_server.port)
    finally:
        await other.stop(None)
    assert len(set(seen.values())) == 1, seen
    ((kind, _, retryable),) = set(seen.values())
    assert kind == "handler_unavailable" and retryable


async def test_sidecar_channels_are_closed_after_the_runs(loopback_server: ServerProcess) -> None:
    """Runs against many addresses that never answer as a Handler leave no channel reconnecting."""
    listeners = [Listener() for _ in range(8)]
    ports = [await listener.__aenter__() for listener in listeners]
    try:
        async with authorized_channel(loopback_server.target) as ch:
            await asyncio.gather(
                *(
                    execute(ch, inline("sidecar", {"address": f"127.0.0.{1 + i % 4}:{port}"}, timeout=5))
                    for i, port in enumerate(ports)
                )
            )
        # idle after 0.5 s, closed by the next reaper pass: then nobody connects any more
        end = time.monotonic() + 15
        while True:
            before = sum(listener.accepted for listener in listeners)
            await asyncio.sleep(2.5)  # longer than the channels' longest reconnect backoff (2 s)
            if sum(listener.accepted for listener in listeners) == before:
                break
            assert time.monotonic() < end, "closed channels kept reconnecting"
        assert before > 0, "the runs never connected: nothing was tested"
    finally:
        for listener in listeners:
            await listener.__aexit__()


# -- wasm ---------------------------------------------------------------------------------


async def test_wasm_guests_above_the_maxima_are_refused(channel: grpc.aio.Channel) -> None:
    bomb = {"language": "javascript", "source": "function main() {}"}
    for limits, field in [
        ({"memory_mb": 2048}, "limits.memory_mb"),
        ({"timeout_seconds": 300}, "limits.timeout_seconds"),
    ]:
        message = await refused_at_save(channel, "wasm", {**bomb, "limits": limits})
        assert field in message
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await execute(channel, inline("wasm", {**bomb, "limits": limits}))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in str(err.value.details())


async def test_one_tenants_wasm_loops_do_not_starve_another_tenant(tmp_path: Path) -> None:
    loop_forever = {
        "language": "javascript",
        "source": "function main() { for (;;) {} }",
        "limits": {"timeout_seconds": 30},
    }
    quick = {"language": "javascript", "source": "export default (input) => input.context.tenant;"}
    with start_server(tmp_path, {"NEOACTIONS_RUNNER_SETTINGS": json.dumps({"wasm_workers": 2})}) as server:
        async with authorized_channel(server.target) as ch:
            tenants = tenants_pb2_grpc.TenantServiceStub(ch)
            for slug in ("hog", "meek"):
                await tenants.CreateTenant(tenants_pb2.CreateTenantRequest(tenant_id=slug))
            warm = await execute(ch, inline("wasm", quick), parent="tenants/meek")
            assert warm.kind == K.KIND_SUCCEEDED, warm  # the runtime is compiled before the clock starts
            stub = executions_pb2_grpc.ExecutionServiceStub(ch)
            started_loops = [asyncio.Event() for _ in range(4)]

            async def hog(started: asyncio.Event) -> None:
                request = executions_pb2.ExecuteRequest(parent="tenants/hog", inline=inline("wasm", loop_forever, 60))
                async for update in stub.Execute(request):
                    if update.kind == K.KIND_STARTED:
                        started.set()

            hogs = [asyncio.create_task(hog(e)) for e in started_loops]
            try:
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started_loops)), 20)
                async with stays_responsive(server):
                    started = time.monotonic()
                    last = await execute(ch, inline("wasm", quick), parent="tenants/meek")
                    waited = time.monotonic() - started
                assert last.kind == K.KIND_SUCCEEDED and json.loads(last.output_json) == "meek", last
                # without a fair share the 10 ms job waits for 30 s loops (it waited 60 s before)
                assert waited < 10, waited
                assert not any(h.done() for h in hogs), "the loops still run: they did hold workers"
            finally:
                for h in hogs:
                    h.cancel()
                await asyncio.gather(*hogs, return_exceptions=True)
