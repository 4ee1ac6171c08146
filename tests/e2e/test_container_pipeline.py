"""Container and sidecar handler types through the whole pipeline: a real server process,
actions saved over gRPC, events published, executions stored (embedded store)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2, actions_pb2_grpc, events_pb2, events_pb2_grpc, executions_pb2
from tests.conftest import eventually_sync, port_open
from tests.e2e.conftest import ServerProcess
from tests.integration.dockerenv import (
    ONESHOT_IMAGE,
    PYTHON_SIDECAR_IMAGE,
)
from tests.integration.dockerenv import docker_images as docker_images  # the fixture
from tests.integration.dockerenv import node_sdk as node_sdk  # the fixture

ADMIN = "tenants/admin"
E = executions_pb2


@pytest.fixture(scope="module")
def embedded_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the module (stopping one gracefully takes a while)."""
    request.getfixturevalue("docker_images")
    tmp_path = tmp_path_factory.mktemp("container-pipeline")
    proc = ServerProcess(str(tmp_path / "data"), tmp_path / "server.log")
    with pytest.MonkeyPatch.context() as mp:  # the node sidecar listens on loopback: the operator allows it
        mp.setenv("NEOACTIONS_RUNNER_SETTINGS", json.dumps({"http_allow_networks": ["127.0.0.0/8"]}))
        proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def sync_action(name: str, event_type: str, handler_type: str, config: dict[str, Any], **extra: Any) -> Any:
    body = {
        "trigger": {"event_types": [event_type]},
        "handler": {"type": handler_type, "config": config},
        "execution_mode": "EXECUTION_MODE_SYNC",
        "retry_policy": {"max_retries": 0},
        **extra,
    }
    return actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


async def publish(events: Any, event_type: str, data: dict[str, Any]) -> list[Any]:
    reply = await events.PublishEvent(
        events_pb2.PublishEventRequest(
            parent=ADMIN, wait=True, event=events_pb2.Event(type=event_type, data_json=json.dumps(data))
        )
    )
    return list(reply.executions)


async def test_container_actions_run_through_the_pipeline(embedded_server: ServerProcess) -> None:
    async with authorized_channel(embedded_server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        await actions.CreateAction(
            sync_action("thumbnail", "images.uploaded", "container", {"image": ONESHOT_IMAGE, "config": {"w": 64}})
        )
        await actions.CreateAction(
            sync_action(
                "enrich",
                "images.uploaded",
                "container",
                {"image": PYTHON_SIDECAR_IMAGE, "mode": "sidecar", "config": {"greeting": "{{ data.who }}"}},
            )
        )
        await actions.CreateAction(
            sync_action("hog", "images.huge", "container", {"image": ONESHOT_IMAGE, "memory_mb": 32})
        )
        await actions.CreateAction(
            sync_action("stuck", "images.stuck", "container", {"image": ONESHOT_IMAGE}, timeout_seconds=1.5)
        )

        first = {e.action.rsplit("/", 1)[-1]: e for e in await publish(events, "images.uploaded", {"who": "ada"})}
        assert set(first) == {"thumbnail", "enrich"}
        thumb, enrich = first["thumbnail"], first["enrich"]
        assert thumb.status == E.EXECUTION_STATUS_SUCCEEDED, thumb.error
        echoed = json.loads(thumb.output_json)["echo"]
        assert echoed["config"] == {"w": 64} and echoed["input"] == {"who": "ada"}
        assert (
            echoed["context"]["execution_id"] == thumb.id
            and echoed["context"]["idempotency_key"] == thumb.idempotency_key
        )
        assert enrich.status == E.EXECUTION_STATUS_SUCCEEDED, enrich.error
        out = json.loads(enrich.output_json)
        assert out["greeting"] == "ada" and out["execution_id"] == enrich.id

        again = {e.action.rsplit("/", 1)[-1]: e for e in await publish(events, "images.uploaded", {"who": "bob"})}
        assert json.loads(again["enrich"].output_json)["host"] == out["host"], "the warm sidecar served both"

        (hog,) = await publish(events, "images.huge", {"mode": "mem"})
        assert hog.status == E.EXECUTION_STATUS_FAILED and hog.error.type == "oom_killed", hog
        (stuck,) = await publish(events, "images.stuck", {"mode": "sleep"})
        assert stuck.status == E.EXECUTION_STATUS_TIMED_OUT, stuck
        assert stuck.attempts[0].status == E.EXECUTION_STATUS_TIMED_OUT


@pytest.fixture(scope="module")
def node_greeter(request: pytest.FixtureRequest) -> Iterator[str]:
    sdk: Path = request.getfixturevalue("node_sdk")
    import socket

    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    proc = subprocess.Popen(["node", "example/greet.js", str(port)], cwd=sdk, stdout=subprocess.DEVNULL)
    try:
        eventually_sync(
            lambda: port_open("127.0.0.1", port), within=15, interval=0.05, what="the node handler listening"
        )
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_nodejs_sidecar_action_runs_through_the_pipeline(
    embedded_server: ServerProcess, node_greeter: str
) -> None:
    async with authorized_channel(embedded_server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        await actions.CreateAction(
            sync_action(
                "welcome", "users.created", "sidecar", {"address": node_greeter, "config": {"salutation": "Welcome"}}
            )
        )
        (welcome,) = await publish(events, "users.created", {"name": "Ada"})
        assert welcome.status == E.EXECUTION_STATUS_SUCCEEDED, welcome.error
        out = json.loads(welcome.output_json)
        assert out["greeting"] == "Welcome, Ada" and out["runtime"].startswith("node ")
        assert out["executionId"] == welcome.id and out["tenant"] == "admin"

        with pytest.raises(grpc.aio.AioRpcError) as err:
            await actions.CreateAction(sync_action("broken", "users.created", "sidecar", {"addr": node_greeter}))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
