"""Hostile input at the API edge, against a real server: each request fails alone with
INVALID_ARGUMENT naming the field, and the server stays up and answering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from typer.testing import CliRunner

from neoactions.client import AsyncClient, authorized_channel
from neoactions.client.cli import app as cli
from neoactions.domain.errors import InvalidArgument, NeoActionsError
from neoactions.domain.status import from_rpc_error
from neoactions.server.api.paging import MAX_PAGE_BYTES
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
from tests.adversarial.harness import assert_alive, stays_responsive
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"
DEEP = "[" * 20_000 + "]" * 20_000


@pytest.fixture
async def channel(hostile_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with authorized_channel(hostile_server.target) as ch:
        yield ch


async def refused(call: Any) -> NeoActionsError:
    """The error of a call that must fail with INVALID_ARGUMENT."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (err.value.code(), err.value.details())
    return from_rpc_error(err.value)


def fields(error: NeoActionsError) -> list[str]:
    return [v.field for v in error.violations]


def python_action(name: str, function: str, validate_only: bool = False) -> actions_pb2.CreateActionRequest:
    body = {
        "trigger": {"event_types": ["orders.created"]},
        "handler": {"type": "python", "config": {"function": function}},
    }
    return actions_pb2.CreateActionRequest(
        parent=ADMIN,
        action_id=name,
        action=json_format.ParseDict(body, actions_pb2.Action()),
        validate_only=validate_only,
    )


# --- item 1: saving never imports, calls or instantiates unapproved code ----------------------


@pytest.mark.parametrize("validate_only", [False, True])
@pytest.mark.parametrize(
    "function",
    ["unittest:main", "venv.__main__:main", "os:system", "shop.handlers:os.system", "shop.exits_on_import:handler"],
)
async def test_saving_an_unapproved_or_exiting_function_fails_the_call_not_the_server(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, function: str, validate_only: bool
) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    async with stays_responsive(hostile_server):
        error = await refused(actions.CreateAction(python_action("evil", function, validate_only)))
    assert error.reason == "UNKNOWN_HANDLER_FUNCTION"
    assert fields(error) == ["handler.config.function"]
    await assert_alive(hostile_server)


async def test_an_inline_execute_of_an_unapproved_function_is_refused(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    inline = executions_pb2.InlineAction(
        handler=json_format.ParseDict({"type": "python", "config": {"function": "os:system"}}, actions_pb2.Handler())
    )
    stream = executions.Execute(executions_pb2.ExecuteRequest(parent=ADMIN, inline=inline, input_json='{"x": 1}'))
    error = await refused(_drain(stream))
    assert fields(error) == ["inline.handler.config.function"]
    await assert_alive(hostile_server)


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_a_handler_raising_system_exit_fails_its_execution_and_the_server_goes_on(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    async with stays_responsive(hostile_server):
        for function in ("shop.probes:exits", "shop.probes:interrupts"):
            inline = executions_pb2.InlineAction(
                handler=json_format.ParseDict(
                    {"type": "python", "config": {"function": function}}, actions_pb2.Handler()
                )
            )
            updates = [u async for u in executions.Execute(executions_pb2.ExecuteRequest(parent=ADMIN, inline=inline))]
            assert updates[-1].status == executions_pb2.EXECUTION_STATUS_FAILED
            assert updates[-1].error.type in ("SystemExit", "KeyboardInterrupt")


# --- item 8: bad input gets INVALID_ARGUMENT naming the field -----------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (DEEP, "JSON_TOO_DEEP"),
        ("[" * 65 + "]" * 65, "JSON_TOO_DEEP"),
        ('{"a": ' * 900 + "1" + "}" * 900, "JSON_TOO_DEEP"),
        ('{"name": "\\ud800"}', "MALFORMED_JSON"),
        ('{"\\udfff": 1}', "MALFORMED_JSON"),
    ],
)
async def test_hostile_json_in_a_publish(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, data: str, reason: str
) -> None:
    events = events_pb2_grpc.EventServiceStub(channel)
    async with stays_responsive(hostile_server):
        error = await refused(
            events.PublishEvent(
                events_pb2.PublishEventRequest(
                    parent=ADMIN, event=events_pb2.Event(type="orders.created", data_json=data)
                )
            )
        )
        assert error.reason == reason and fields(error) == ["event.data_json"]
        batch = events_pb2.PublishEventsRequest(
            parent=ADMIN,
            events=[
                events_pb2.Event(type="orders.created", data_json="{}"),
                events_pb2.Event(type="x", metadata_json=data),
            ],
        )
        assert fields(await refused(events.PublishEvents(batch))) == ["events[1].metadata_json"]


async def test_hostile_json_elsewhere(hostile_server: ServerProcess, channel: grpc.aio.Channel) -> None:
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    inline = executions_pb2.InlineAction(
        handler=json_format.ParseDict(
            {"type": "python", "config": {"function": "shop.handlers:alert"}}, actions_pb2.Handler()
        )
    )
    for data in (DEEP, '"\\ud800"'):
        request = executions_pb2.ExecuteRequest(parent=ADMIN, inline=inline, input_json=data)
        assert fields(await refused(_drain(executions.Execute(request)))) == ["input_json"]
        test = actions_pb2.TestActionRequest(
            parent=ADMIN, event=actions_pb2.TestEvent(type="orders.created", data_json=data)
        )
        assert fields(await refused(actions.TestAction(test))) == ["event.data_json"]
    await assert_alive(hostile_server)


@pytest.mark.parametrize(
    ("field", "length"), [("source", 1025), ("subject", 1025), ("type", 257), ("idempotency_key", 513)]
)
async def test_over_long_event_fields(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, field: str, length: int
) -> None:
    events = events_pb2_grpc.EventServiceStub(channel)
    event = events_pb2.Event(type="orders.created", data_json="{}")
    setattr(event, field, "a" * length)
    error = await refused(events.PublishEvent(events_pb2.PublishEventRequest(parent=ADMIN, event=event)))
    assert error.reason == "FIELD_TOO_LONG" and fields(error) == [f"event.{field}"]


async def test_over_long_resource_names(hostile_server: ServerProcess, channel: grpc.aio.Channel) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    error = await refused(
        actions.GetAction(actions_pb2.GetActionRequest(name="tenants/admin/actions/" + "a" * 100_000))
    )
    assert fields(error) == ["name"] and len(error.message) < 300


#: each method with its request type, for the raw-bytes test
METHODS = [
    ("/neoactions.v1.EventService/PublishEvent", False),
    ("/neoactions.v1.EventService/ListEvents", False),
    ("/neoactions.v1.ActionService/CreateAction", False),
    ("/neoactions.v1.ActionService/TestAction", False),
    ("/neoactions.v1.TenantService/CreateTenant", False),
    ("/neoactions.v1.ExecutionService/GetExecution", False),
    ("/neoactions.v1.ExecutionService/Execute", True),
    ("/neoactions.v1.ExecutionService/WatchExecutions", True),
]
UNDECODABLE = [
    b"\xff\xff\xff\xff",  # a varint that never ends
    b"\x0a\x05ab",  # a length past the end
    b"\x0a\x02\xc3\x28",  # invalid UTF-8 in a string field
    b"\x0f",  # field number 1 with the unused wire type 7
]


@pytest.mark.parametrize(("method", "streaming"), METHODS)
async def test_undecodable_requests_are_invalid_argument(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, method: str, streaming: bool
) -> None:
    for payload in UNDECODABLE:
        if streaming:
            call = channel.unary_stream(method)(payload, timeout=10)
            error = await refused(_drain(call))
        else:
            error = await refused(channel.unary_unary(method)(payload, timeout=10))
        assert error.reason == "MALFORMED_REQUEST", (payload, error)
    await assert_alive(hostile_server)


# --- item 9: tenant names are matched whole --------------------------------------------------------


@pytest.mark.parametrize("slug", ["admin\n", "shop\n", "shop\r", " shop", "Shop", "a" * 42, "admin"])
async def test_tenant_ids_are_matched_whole(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, slug: str
) -> None:
    tenants = tenants_pb2_grpc.TenantServiceStub(channel)
    error = await refused(tenants.CreateTenant(tenants_pb2.CreateTenantRequest(tenant_id=slug)))
    assert fields(error) == ["tenant_id"]
    if slug != "admin":  # the admin tenant exists; it is only not created again
        events = events_pb2_grpc.EventServiceStub(channel)
        error = await refused(events.ListEvents(events_pb2.ListEventsRequest(parent=f"tenants/{slug}")))
        assert fields(error) == ["parent"]
    listed = await tenants.ListTenants(tenants_pb2.ListTenantsRequest(page_size=1000))
    assert all("\n" not in t.name and "\r" not in t.name for t in listed.tenants)


# --- List pages: a row cap and a byte cap -------------------------------------------------------------


async def test_a_list_page_stays_within_its_byte_cap_and_paging_sees_every_event_once(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    tenants = tenants_pb2_grpc.TenantServiceStub(channel)
    await tenants.CreateTenant(tenants_pb2.CreateTenantRequest(tenant_id="bulky"))
    events = events_pb2_grpc.EventServiceStub(channel)
    blob = json.dumps({"pad": "x" * 240_000})
    published = set()
    for _ in range(3):
        batch = [events_pb2.Event(type="bulky.stored", data_json=blob) for _ in range(10)]
        reply = await events.PublishEvents(events_pb2.PublishEventsRequest(parent="tenants/bulky", events=batch))
        published |= {r.event.id for r in reply.results}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await events.ListEvents(
            events_pb2.ListEventsRequest(parent="tenants/bulky", page_size=1000, page_token=token)
        )
        assert page.ByteSize() <= MAX_PAGE_BYTES
        seen += [e.id for e in page.events]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(published) and len(seen) == len(set(seen))
    assert pages >= 3  # 30 events of ~240 KB cannot fit in one 3 MiB page
    await assert_alive(hostile_server)


# --- the client and the CLI say it the same way ------------------------------------------------------


def test_the_cli_refuses_deep_data_in_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    result = CliRunner().invoke(cli, ["publish", "orders.created", "--data", f"@{deep}", "--server", "127.0.0.1:1"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: INVALID_ARGUMENT: --data: nests too deeply (at most 64 levels of arrays and objects)"]
    assert "Traceback" not in result.output


async def test_the_client_refuses_deep_or_non_text_data_naming_the_argument(hostile_server: ServerProcess) -> None:
    deep: Any = []
    for _ in range(20_000):
        deep = [deep]
    async with AsyncClient(hostile_server.target) as client:
        with pytest.raises(InvalidArgument) as err:
            await client.publish("orders.created", {"d": deep})
        assert fields(err.value) == ["data"]
        with pytest.raises(InvalidArgument) as err:
            await client.publish("orders.created", {"s": "\ud800"})
        assert fields(err.value) == ["data"]
        nested: Any = 1
        for _ in range(100):
            nested = {"n": nested}
        with pytest.raises(InvalidArgument) as err:  # encodable, but past the server's limit
            await client.publish("orders.created", nested)
        assert fields(err.value) == ["event.data_json"] and err.value.reason == "JSON_TOO_DEEP"
