"""Traces across processes: an api process and a worker process (PostgreSQL + Redis) export
spans with the real OTLP exporter to a loopback OTLP receiver. One published event — its
call carrying the caller's ``traceparent`` in gRPC metadata — fans out to a sync python
action (run by the api process), a queued python action and a webhook (run by the worker):
every span is in the caller's trace, with the right parents, wherever it was made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.v1 import actions_pb2, actions_pb2_grpc, events_pb2, events_pb2_grpc
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.otlp_receiver import ReceivedSpan, Receiver, otlp_receiver
from tests.e2e.test_reliability_queued import database_url  # noqa: F401 - the fixture
from tests.fixtures.loopback_http import LoopbackServer, serve_http

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP span kinds


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture
def webhook() -> Iterator[LoopbackServer]:
    with serve_http() as server:
        yield server


def _action(name: str, handler: dict[str, object], mode: str) -> actions_pb2.CreateActionRequest:
    body = {"trigger": {"event_types": ["orders.created"]}, "handler": handler, "execution_mode": mode}
    return actions_pb2.CreateActionRequest(
        parent="tenants/admin", action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


@pytest.mark.slow
async def test_one_trace_across_api_and_worker_processes(
    database_url: str,  # noqa: F811
    tmp_path: Path,
    receiver: Receiver,
    webhook: LoopbackServer,
) -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "NEOACTIONS_RUNNER_SETTINGS": json.dumps({"http_allow_networks": ["127.0.0.0/8"]}),
    }
    cluster = Cluster(database_url, tmp_path, workers=1, extra_env=env)
    cluster.start()
    api_pid, worker_pid = cluster.api.pid, cluster.workers[0].pid
    try:
        python = {"type": "python", "config": {"function": "shop.handlers:alert"}}
        async with authorized_channel(cluster.api.target) as ch:
            actions = actions_pb2_grpc.ActionServiceStub(ch)
            await actions.CreateAction(_action("notify", python, "EXECUTION_MODE_SYNC"))
            await actions.CreateAction(_action("later", python, "EXECUTION_MODE_QUEUED"))
            http = {"type": "http", "config": {"url": f"{webhook.url}/hook"}}
            await actions.CreateAction(_action("hook", http, "EXECUTION_MODE_ASYNC"))
            published = await events_pb2_grpc.EventServiceStub(ch).PublishEvent(
                events_pb2.PublishEventRequest(
                    parent="tenants/admin",
                    event=events_pb2.Event(type="orders.created", data_json='{"order_id": 7}'),
                    wait=True,
                ),
                metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),),
            )
        ids = {x.action.rsplit("/", 1)[-1]: x.name.rsplit("/", 1)[-1] for x in published.executions}
        assert set(ids) == {"notify", "later", "hook"}

        def traced() -> list[ReceivedSpan]:
            return [s for s in receiver.snapshot() if s.trace_id == TRACE_ID]

        async def all_attempts_exported() -> bool:
            names = {s.name for s in traced()}
            return {"attempt notify", "attempt later", "attempt hook", "POST"} <= names

        await wait_for(all_attempts_exported, within=60)
    finally:
        cluster.stop()

    spans = traced()
    by_name: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    [rpc] = by_name["neoactions.v1.EventService/PublishEvent"]
    assert rpc.kind == SERVER and rpc.parent_span_id == CALLER_SPAN
    assert rpc.attributes["rpc.system"] == "grpc" and rpc.attributes["rpc.method"] == "PublishEvent"
    [publish] = by_name["publish orders.created"]
    assert publish.kind == PRODUCER and publish.parent_span_id == rpc.span_id
    [match] = by_name["match"]
    assert match.parent_span_id == publish.span_id and match.attributes["neoactions.matched"] == 3
    ran_in = {}
    for action, execution_id in ids.items():
        [schedule] = by_name[f"schedule {action}"]
        assert schedule.parent_span_id == publish.span_id
        [attempt] = by_name[f"attempt {action}"]
        assert attempt.kind == CONSUMER and attempt.parent_span_id == schedule.span_id
        assert attempt.attributes["neoactions.execution.id"] == execution_id
        assert attempt.attributes["neoactions.outcome"] == "succeeded"
        ran_in[action] = (attempt.resource["neoactions.role"], attempt.resource["process.pid"])
    assert ran_in == {"notify": ("api", api_pid), "later": ("worker", worker_pid), "hook": ("worker", worker_pid)}
    [client] = by_name["POST"]
    [hook_attempt] = by_name["attempt hook"]
    assert client.kind == CLIENT and client.parent_span_id == hook_attempt.span_id
    [request] = webhook.requests
    assert request.headers["traceparent"].split("-")[1:3] == [TRACE_ID, client.span_id]
