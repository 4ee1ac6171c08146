"""Hostile CEL conditions against a real server (issue 17, item 4): an expression whose worst
case is too costly is refused when saved, naming the condition; events thrown at the most
costly expressions that are accepted do not stall the server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.domain.status import from_rpc_error
from neoactions.v1 import actions_pb2, actions_pb2_grpc, events_pb2, events_pb2_grpc
from tests.adversarial.harness import assert_alive, rss_bytes, start_server, stays_responsive
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"
EVENT_TYPE = "cel.hostile"
MAX_EVENT_BYTES = 256 * 1024


@pytest.fixture
async def channel(hostile_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with authorized_channel(hostile_server.target) as ch:
        yield ch


def cel_action(name: str, expression: str) -> actions_pb2.CreateActionRequest:
    body = {
        "trigger": {"event_types": [EVENT_TYPE], "conditions": [{"cel": expression}]},
        "handler": {"type": "python", "config": {"function": "shop.handlers:quick"}},
    }
    return actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


#: what froze the server for minutes, and its kin
HOSTILE = [
    "data.items.map(a, data.items.map(b, a + b)).size() > 0",
    "data.items.all(a, data.items.all(b, data.items.all(c, a + b + c >= 0)))",
    "data.a.exists(x, data.b.exists(y, x == y))",
    "data.items.filter(i, i.price > 100).size() > 2",
    "data.items.map(x, data.s).size() > 0",
    'data.s.matches("\\\\w{100}")',
    "data.s + data.s + data.s + data.s + data.s == data.t",
    # literal lists: saving once ran it on an empty event, for seconds
    "[" + ",".join(["0"] * 300) + "].map(a, [" + ",".join(["0"] * 300) + "].map(b, a)).size() > 0",
]


@pytest.mark.parametrize("expression", HOSTILE)
async def test_a_costly_expression_is_refused_on_save_naming_the_condition(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, expression: str
) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    async with stays_responsive(hostile_server):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await actions.CreateAction(cel_action("costly", expression))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    error = from_rpc_error(err.value)
    assert error.reason == "CEL_TOO_COSTLY"
    assert [v.field for v in error.violations] == ["trigger.conditions[0].cel"]
    assert "cel_cost_budget" in error.message


async def test_a_pattern_read_from_the_event_is_refused(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    # the engine's regex compiler can be made to allocate without bound by such a pattern
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await actions.CreateAction(cel_action("dynamic-regex", "data.s.matches(data.pattern)"))
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in from_rpc_error(err.value).violations] == ["trigger.conditions[0].cel"]
    await assert_alive(hostile_server)


#: accepted expressions near the budget, and events as bad for them as the bounds allow
#: (none matches, so what is measured is matching)
WORST_ACCEPTED = {
    "nested-lines": 'data.orders.exists(o, o.lines.exists(l, l.sku == "x"))',
    "many-scans": " || ".join(f'data.s{i}.contains("zz")' for i in range(6)),
    "membership": "data.x in data.items",
    "deep-equality": "data.x == data.y && data.x != data.x",
}


def worst_events() -> list[dict[str, Any]]:
    orders = [{"lines": [{"sku": "y"}] * 200}] + [{"lines": []}] * 255
    return [
        {"orders": orders},
        {f"s{i}": "ab" * (MAX_EVENT_BYTES // 12 - 8) for i in range(6)},
        {"x": -1, "items": [{}] * 990},
        {"x": {str(i): i for i in range(490)}, "y": {str(i): i for i in range(490)}},
        # past the bounds: not evaluated, no match
        {"orders": [{"lines": []}] * 5000},
        {"x": -1, "items": list(range(40_000))},
    ]


async def test_events_against_the_costliest_accepted_expressions_keep_the_server_responsive(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    events = events_pb2_grpc.EventServiceStub(channel)
    for name, expression in WORST_ACCEPTED.items():
        await actions.CreateAction(cel_action(name, expression))
    payloads = [json.dumps(data, separators=(",", ":")) for data in worst_events()]
    assert all(len(p) <= MAX_EVENT_BYTES for p in payloads), [len(p) for p in payloads]
    rss_before = rss_bytes(hostile_server.pid)
    async with stays_responsive(hostile_server, within=1.0) as seen:
        for _ in range(3):
            for payload in payloads:
                reply = await events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent=ADMIN, event=events_pb2.Event(type=EVENT_TYPE, data_json=payload)
                    )
                )
                assert list(reply.executions) == []
        # a batch: every event is matched against every action in one call
        small = [p for p in payloads if len(p) < 64 * 1024]
        batch = [events_pb2.Event(type=EVENT_TYPE, data_json=p) for p in small * 20]
        reply = await events.PublishEvents(events_pb2.PublishEventsRequest(parent=ADMIN, events=batch))
        assert len(reply.results) == len(batch)
    assert seen.worst < 1.0
    await assert_alive(hostile_server)
    assert rss_bytes(hostile_server.pid) < rss_before + 512 * 1024 * 1024


async def test_the_budget_and_bounds_are_settings(tmp_path: Path) -> None:
    env = {"NEOACTIONS_CEL_COST_BUDGET": "5000", "NEOACTIONS_MAX_CEL_LIST_ITEMS": "4"}
    with start_server(tmp_path, env) as server:
        async with authorized_channel(server.target) as ch:
            actions = actions_pb2_grpc.ActionServiceStub(ch)
            events = events_pb2_grpc.EventServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await actions.CreateAction(cel_action("string-work", 'data.s.contains("x")'))
            assert from_rpc_error(err.value).reason == "CEL_TOO_COSTLY"
            await actions.CreateAction(cel_action("short-lists", "data.items.exists(i, i == 3)"))

            async def matched(items: list[int]) -> int:
                event = events_pb2.Event(type=EVENT_TYPE, data_json=json.dumps({"items": items}))
                reply = await events.PublishEvent(events_pb2.PublishEventRequest(parent=ADMIN, event=event))
                return len(reply.executions)

            assert await matched([1, 2, 3]) == 1
            assert await matched([1, 2, 3, 4, 5]) == 0  # longer than max_cel_list_items: not evaluated
