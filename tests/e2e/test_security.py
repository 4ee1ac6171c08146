"""SPEC §9 through the real server, on both stores: API keys and roles, sealed tenants.

One server per store for the module. Two tenants, ``a`` and ``b``; ``b`` holds an action,
an event, executions, a dead letter and keys. Keys of every role of ``a`` then try every RPC
of the service with ``b``'s names, ids and resume tokens: each is refused, and nothing of
``b`` appears in any answer or stream.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message import Message

from neoactions.client import AsyncClient, authorized_channel
from neoactions.domain.errors import NotFound, PermissionDenied, Unauthenticated
from neoactions.server.api.servicers import SERVICE_NAMES
from neoactions.v1 import executions_pb2, executions_pb2_grpc
from tests.conftest import eventually
from tests.e2e.conftest import ServerProcess, module_server

ROLES = ("admin", "writer", "reader", "publisher")
RETRY_ONCE = {"max_retries": 1, "backoff": "fixed", "initial_delay_ms": 50, "jitter": False}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def secured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with module_server(request.param, tmp_path_factory.mktemp(f"security-{request.param}")) as server:
        yield server


@dataclass
class World:
    """Tenant ``b``'s objects, and keys of every role in tenants ``a`` and ``b``."""

    a: str
    b: str
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    key_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    b_event: str = ""
    b_execution: str = ""
    b_dead_letter: str = ""
    b_resume_token: str = ""

    def secrets_of_b(self) -> list[str]:
        """What must never appear in an answer to a key of ``a``."""
        keys = [v for (tenant, _), v in self.key_ids.items() if tenant == self.b]
        ids = [self.b_event, self.b_execution, self.b_dead_letter, *keys]
        return [x for x in ids if x] + ["b-only-action", "b-secret-marker"]


@pytest.fixture(scope="module")
def world(secured: ServerProcess) -> World:
    return asyncio.run(_build_world(secured.target))


async def _build_world(target: str) -> World:
    suffix = uuid.uuid4().hex[:8]
    w = World(a=f"a_{suffix}", b=f"b_{suffix}")
    async with AsyncClient(target, timeout=30) as admin:
        for tenant in (w.a, w.b):
            await admin.create_tenant(tenant)
            for role in ROLES:
                key, token = await admin.create_api_key(f"{role}-key", role, tenant=tenant)
                w.keys[(tenant, role)] = token
                w.key_ids[(tenant, role)] = key.id
    async with AsyncClient(target, tenant=w.b, api_key=w.keys[(w.b, "admin")], timeout=30) as b:
        await b.create_action(
            {
                "name": "b-only-action",
                "trigger": {"event_types": ["orders.created"]},
                "handler": {"type": "python", "config": {"function": "shop.handlers:alert", "channel": "b"}},
                "execution_mode": "sync",
            }
        )
        await b.create_action(
            {
                "name": "b-broken",
                "trigger": {"event_types": ["orders.failed"]},
                "handler": {"type": "python", "config": {"function": "shop.reliability:always_fail"}},
                "execution_mode": "async",
                "retry_policy": RETRY_ONCE,
                "timeout_seconds": 10,
            }
        )
        published = await b.publish("orders.created", {"marker": "b-secret-marker"}, wait=True)
        w.b_event = published.event.id
        w.b_execution = published.executions[0].id
        await b.publish("orders.failed", {"marker": "b-secret-marker"})
        dead = await eventually(b.list_dead_letters, until=lambda page: len(page.items) == 1, within=30)
        w.b_dead_letter = dead.items[0].id
        async with authorized_channel(target, w.keys[(w.b, "admin")]) as ch:
            watch = executions_pb2_grpc.ExecutionServiceStub(ch).WatchExecutions(
                executions_pb2.WatchExecutionsRequest(parent=f"tenants/{w.b}")
            )
            await asyncio.sleep(0.3)
            await b.publish("orders.created", {"marker": "b-secret-marker"}, wait=True)
            async for update in watch:
                w.b_resume_token = update.resume_token
                break
            watch.cancel()
    return w


# --- authentication ---------------------------------------------------------------------------


async def test_a_call_without_a_key_is_unauthenticated_with_a_hint(secured: ServerProcess) -> None:
    async with AsyncClient(secured.target, channel=grpc.aio.insecure_channel(secured.target)) as anonymous:
        with pytest.raises(Unauthenticated) as raised:
            await anonymous.list_actions()
    assert raised.value.reason == "API_KEY_MISSING"
    assert "NEOACTIONS_API_KEY" in raised.value.message and "admin.key" in raised.value.message


async def test_a_wrong_key_is_unauthenticated(secured: ServerProcess) -> None:
    async with AsyncClient(secured.target, api_key="nak_" + "x" * 20 + "_" + "y" * 43) as wrong:
        with pytest.raises(Unauthenticated) as raised:
            await wrong.list_actions()
    assert raised.value.reason == "API_KEY_INVALID"


async def test_health_stays_open_without_a_key(secured: ServerProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(secured.target) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_revoked_key_is_refused_within_a_second(secured: ServerProcess, world: World) -> None:
    async with AsyncClient(secured.target, tenant=world.a, api_key=world.keys[(world.a, "admin")]) as admin:
        key, token = await admin.create_api_key("short-lived", "reader")
        async with AsyncClient(secured.target, tenant=world.a, api_key=token) as reader:
            await reader.list_actions()
            revoked = await admin.revoke_api_key(key.id)
            assert revoked.revoked_at is not None
            loop = asyncio.get_running_loop()
            started = loop.time()
            while True:
                try:
                    await reader.list_actions()
                except Unauthenticated as exc:
                    assert "revoked" in exc.message
                    break
                assert loop.time() - started < 1.0, "a revoked key still worked after a second"
                await asyncio.sleep(0.05)
        listed = await admin.list_api_keys()
        assert {k.id for k in listed.items} >= {key.id}
        assert all(not hasattr(k, "token") for k in listed.items)


async def test_roles_allow_what_they_grant_and_nothing_more(secured: ServerProcess, world: World) -> None:
    def client(role: str) -> AsyncClient:
        return AsyncClient(secured.target, tenant=world.a, api_key=world.keys[(world.a, role)])

    async with client("publisher") as publisher:
        await publisher.publish("orders.created", {"n": 1})
        with pytest.raises(PermissionDenied):
            await publisher.list_actions()
    async with client("reader") as reader:
        await reader.list_actions()
        with pytest.raises(PermissionDenied):
            await reader.publish("orders.created", {"n": 1})
        with pytest.raises(PermissionDenied):
            await reader.create_action(
                {
                    "name": "nope",
                    "trigger": {"event_types": ["x.y"]},
                    "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
                }
            )
    async with client("writer") as writer:
        await writer.publish("orders.created", {"n": 1})
        with pytest.raises(PermissionDenied):
            await writer.create_api_key("escalate", "admin")
        with pytest.raises(NotFound):
            await writer.list_tenants()


# --- sealed tenants ---------------------------------------------------------------------------

_STREAMING = {"Execute", "WatchExecutions"}


def _request_for(method: str, w: World) -> Message:
    """``method``'s request aimed at tenant ``b`` with ``b``'s names and ids (generic: RPCs
    added later are covered by their ``parent`` / ``name`` fields)."""
    service, _, rpc = method.partition("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[rpc]
    cls = _message_class(descriptor.input_type)
    request = cls()
    fields = {f.name for f in descriptor.input_type.fields}
    b = f"tenants/{w.b}"
    if "parent" in fields:
        request.parent = b
    if "name" in fields:
        request.name = _name_for(rpc, w)
    if rpc in ("CreateAction", "UpdateAction"):
        body = {
            "name": f"{b}/actions/b-only-action",
            "trigger": {"eventTypes": ["orders.created"]},
            "handler": {"type": "python", "config": {"function": "shop.handlers:alert"}},
        }
        json_format.ParseDict(body, request.action)
        if rpc == "CreateAction":
            request.action_id = "b-intruder"
    if rpc in ("PublishEvent", "TestAction"):
        request.event.type = "orders.created"
        request.event.data_json = "{}"
    if rpc == "PublishEvents":
        request.events.add(type="orders.created", data_json="{}")
    if rpc == "Execute":
        request.action = "b-only-action"
    if rpc == "WatchExecutions":
        request.resume_token = w.b_resume_token
    if "execution_ids" in fields:
        request.execution_ids.append(w.b_dead_letter)
    if rpc == "CreateTenant":
        request.tenant_id = f"x_{uuid.uuid4().hex[:8]}"
    if rpc == "CreateApiKey":
        request.display_name, request.role = "intruder", "admin"
    return request


def _name_for(rpc: str, w: World) -> str:
    b = f"tenants/{w.b}"
    if "Action" in rpc and "ApiKey" not in rpc:
        return f"{b}/actions/b-only-action"
    if "Event" in rpc:
        return f"{b}/events/{w.b_event}"
    if rpc in ("RetryExecution",):
        return f"{b}/executions/{w.b_dead_letter}"
    if "Execution" in rpc:
        return f"{b}/executions/{w.b_execution}"
    if "Replay" in rpc:
        return f"{b}/replays/{uuid.uuid4()}"
    if "Retention" in rpc:
        return f"{b}/retention"
    if "Secret" in rpc:
        return f"{b}/secrets/b_secret"
    if "ApiKey" in rpc:
        return f"{b}/apiKeys/{w.key_ids[(w.b, 'reader')]}"
    if "Tenant" in rpc:
        return b
    return f"{b}/items/unknown"


def _message_class(descriptor: Any) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


async def _call(channel: grpc.aio.Channel, method: str, request: Message) -> tuple[grpc.StatusCode, str]:
    """Call ``method``; its status code and everything it answered (as text)."""
    service, _, rpc = method.partition("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[rpc]
    response_class = _message_class(descriptor.output_type)
    path = f"/{method}"
    seen: list[str] = []
    try:
        if descriptor.client_streaming:
            call = channel.stream_stream(path, lambda m: m.SerializeToString(), response_class.FromString)
            stream = call(iter([request]), timeout=10)
            async for item in stream:
                seen.append(str(item))
        elif descriptor.server_streaming:
            call_us = channel.unary_stream(path, lambda m: m.SerializeToString(), response_class.FromString)
            async for item in call_us(request, timeout=10):
                seen.append(str(item))
        else:
            call_uu = channel.unary_unary(path, lambda m: m.SerializeToString(), response_class.FromString)
            seen.append(str(await call_uu(request, timeout=30)))
    except grpc.aio.AioRpcError as exc:
        return exc.code(), "\n".join(seen) + (exc.details() or "")
    return grpc.StatusCode.OK, "\n".join(seen)


REFUSED = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}


def served_methods() -> list[str]:
    """Every RPC of every service the server registers."""
    pool = descriptor_pool.Default()
    return sorted(f"{s}/{m.name}" for s in SERVICE_NAMES for m in pool.FindServiceByName(s).methods)


@pytest.mark.parametrize("role", ROLES)
async def test_every_rpc_with_the_other_tenants_names_is_refused(
    secured: ServerProcess, world: World, role: str
) -> None:
    leaks: list[str] = []
    accepted: list[str] = []
    async with authorized_channel(secured.target, world.keys[(world.a, role)]) as channel:
        for method in served_methods():
            request = _request_for(method, world)
            aimed = {f.name for f in request.DESCRIPTOR.fields} & {"parent", "name"}
            code, answered = await _call(channel, method, request)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.endswith("WatchExecutions"):
                code = grpc.StatusCode.OK  # a watch that ran is judged by what it showed (below)
            if aimed and code not in REFUSED:  # (platform-wide RPCs, e.g. plugin search, name no tenant)
                accepted.append(f"{method}: {code.name}")
            leaks += [f"{method} showed {s!r}" for s in world.secrets_of_b() if s in answered]
    assert not leaks, leaks
    assert not accepted, f"a key of another tenant was not refused: {accepted}"


async def test_a_keys_own_lists_and_streams_show_nothing_of_the_other_tenant(
    secured: ServerProcess, world: World
) -> None:
    secrets = world.secrets_of_b()
    async with AsyncClient(secured.target, tenant=world.a, api_key=world.keys[(world.a, "admin")]) as a:
        answers = [
            await a.list_actions(),
            await a.list_executions(),
            await a.list_events(),
            await a.list_dead_letters(),
            await a.list_api_keys(),
        ]
        text = json.dumps([[str(i) for i in page.items] for page in answers])
        assert not [s for s in secrets if s in text]
        for lookup in (lambda: a.get_execution(world.b_execution), lambda: a.get_event(world.b_event)):
            with pytest.raises(NotFound):
                await lookup()
        with pytest.raises(NotFound):
            await a.revoke_api_key(world.key_ids[(world.b, "reader")])
    # a's watch, resumed with b's token, while b publishes: nothing of b
    async with authorized_channel(secured.target, world.keys[(world.a, "admin")]) as channel:
        watch = executions_pb2_grpc.ExecutionServiceStub(channel).WatchExecutions(
            executions_pb2.WatchExecutionsRequest(parent=f"tenants/{world.a}", resume_token=world.b_resume_token)
        )
        seen: list[str] = []

        async def read() -> None:
            try:
                async for update in watch:
                    seen.append(str(update))
            except grpc.aio.AioRpcError as exc:
                seen.append(exc.details() or "")

        reader = asyncio.create_task(read())
        async with AsyncClient(secured.target, tenant=world.b, api_key=world.keys[(world.b, "publisher")]) as b:
            await b.publish("orders.created", {"marker": "b-secret-marker"}, wait=True)
        await asyncio.sleep(0.5)
        watch.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert not [s for s in secrets if any(s in line for line in seen)]


async def test_deleting_a_tenant_removes_its_data_and_its_keys(secured: ServerProcess) -> None:
    slug = f"gone_{uuid.uuid4().hex[:8]}"
    async with AsyncClient(secured.target, timeout=30) as admin:
        await admin.create_tenant(slug)
        _, token = await admin.create_api_key("doomed", "writer", tenant=slug)
        async with AsyncClient(secured.target, tenant=slug, api_key=token) as doomed:
            await doomed.publish("orders.created", {"n": 1})
            await admin.delete_tenant(slug)
            with pytest.raises(Unauthenticated):
                await doomed.list_events()
        assert slug not in {t.slug for t in (await admin.list_tenants()).items}
        with pytest.raises(NotFound):
            await admin.list_events(tenant=slug)
        with pytest.raises(NotFound):
            await admin.delete_tenant(slug)


# --- the first key ----------------------------------------------------------------------------


@pytest.fixture
def fresh_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """An embedded server started as a newcomer starts it: no key anywhere."""
    monkeypatch.delenv("NEOACTIONS_BOOTSTRAP_KEY_FILE")
    monkeypatch.delenv("NEOACTIONS_API_KEY")
    proc = ServerProcess(str(tmp_path / "data"), tmp_path / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_an_embedded_server_writes_its_first_admin_key_for_its_owner_only(
    fresh_embedded: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "data" / "admin.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "admin.key" in (tmp_path / "server.log").read_text()
    token = key_file.read_text().strip()
    assert token not in (tmp_path / "server.log").read_text()
    # a client given (or finding) the data dir uses that key by itself
    async with AsyncClient(fresh_embedded.target, data_dir=str(tmp_path / "data")) as client:
        assert client.api_key == token
        assert (await client.list_tenants()).items
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".neoactions").mkdir()
    (tmp_path / ".neoactions" / "admin.key").write_text(token + "\n")
    async with AsyncClient(fresh_embedded.target) as found:
        assert found.api_key == token


__all__ = ["World"]
