"""Hostile handler-config templates and poison executions against a real server (issue 17,
items 2 and 3): a constant blow-up is refused at save, naming the field; a template whose
loops depend on the event fails its execution (not retryable) while the server answers
others; a poison execution ends — in the DLQ after its retry policy's attempts — and its
Execute stream ends with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from neoactions.client import authorized_channel
from neoactions.domain.status import from_rpc_error
from neoactions.v1 import (
    actions_pb2,
    actions_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    executions_pb2,
    executions_pb2_grpc,
)
from tests.adversarial.harness import assert_alive, rss_bytes, stays_responsive
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"
FINAL = {
    executions_pb2.ExecutionUpdate.KIND_SUCCEEDED,
    executions_pb2.ExecutionUpdate.KIND_FAILED,
    executions_pb2.ExecutionUpdate.KIND_TIMED_OUT,
    executions_pb2.ExecutionUpdate.KIND_CANCELLED,
    executions_pb2.ExecutionUpdate.KIND_DEAD_LETTERED,
}


@pytest.fixture
async def channel(hostile_server: ServerProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with authorized_channel(hostile_server.target) as ch:
        yield ch


def action(
    name: str, function: str, config: dict[str, Any] | None = None, **fields: Any
) -> actions_pb2.CreateActionRequest:
    body = {
        "trigger": {"event_types": [f"templates.{name.replace('-', '_')}"]},
        "handler": {"type": "python", "config": {"function": function, **(config or {})}},
        **fields,
    }
    return actions_pb2.CreateActionRequest(
        parent=ADMIN, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


async def final_execution(channel: grpc.aio.Channel, name: str, within: float = 30.0) -> executions_pb2.Execution:
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    async with asyncio.timeout(within):
        while True:
            ex: executions_pb2.Execution = await executions.GetExecution(
                executions_pb2.GetExecutionRequest(name=name), timeout=5.0
            )
            if ex.status in (
                executions_pb2.EXECUTION_STATUS_SUCCEEDED,
                executions_pb2.EXECUTION_STATUS_FAILED,
                executions_pb2.EXECUTION_STATUS_TIMED_OUT,
                executions_pb2.EXECUTION_STATUS_CANCELLED,
                executions_pb2.EXECUTION_STATUS_DEAD_LETTERED,
            ):
                return ex
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 9**(9**7) }}",
        "{{ 'a' * 10**8 }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{{ data.__class__.__mro__ }}",
    ],
)
async def test_a_template_that_blows_up_by_itself_is_refused_at_save_naming_the_field(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, template: str
) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    async with stays_responsive(hostile_server):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            # a deadline well short of the seconds this once took: it answers at once
            await actions.CreateAction(action("blow-up", "shop.handlers:quick", {"channel": template}), timeout=2.0)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    error = from_rpc_error(err.value)
    assert [v.field for v in error.violations] == ["handler.config.channel"]
    assert error.reason == "INVALID_TEMPLATE"


async def test_loops_that_depend_on_the_event_fail_the_execution_while_the_server_answers(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    loop = "{% for _ in range(data.n) %}"
    nested = loop * 3 + "{% endfor %}" * 3
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    await actions.CreateAction(
        action(
            "nested-ranges",
            "shop.handlers:quick",
            {"channel": nested},
            timeout_seconds=2.0,
            retry_policy={"max_retries": 3, "initial_delay_ms": 10},
        )
    )
    events = events_pb2_grpc.EventServiceStub(channel)
    async with stays_responsive(hostile_server):
        published = await events.PublishEvents(
            events_pb2.PublishEventsRequest(
                parent=ADMIN,
                events=[
                    events_pb2.Event(type="templates.nested_ranges", data_json=json.dumps({"n": 10000}))
                    for _ in range(32)
                ],
            )
        )
        names = [ex.name for result in published.results for ex in result.executions]
        assert len(names) == 32
        finals = [await final_execution(channel, name) for name in names]
    for ex in finals:
        assert ex.status == executions_pb2.EXECUTION_STATUS_FAILED, ex
        assert ex.error.type == "template_error" and not ex.error.retryable
        assert "loop steps" in ex.error.message or "longer than" in ex.error.message
        assert len(ex.attempts) == 1  # not retryable: one attempt, counted


async def execute(
    channel: grpc.aio.Channel, action_name: str, within: float = 30.0
) -> list[executions_pb2.ExecutionUpdate]:
    """Every update of an Execute call; the stream must end by itself."""
    executions = executions_pb2_grpc.ExecutionServiceStub(channel)
    call = executions.Execute(executions_pb2.ExecuteRequest(parent=ADMIN, action=action_name, input_json="{}"))
    updates: list[executions_pb2.ExecutionUpdate] = []
    async with asyncio.timeout(within):
        async for update in call:
            updates.append(update)
    return updates


@pytest.mark.parametrize("function", ["shop.poison:recurse", "shop.poison:exhaust"])
async def test_a_poison_execution_ends_in_the_dlq_after_its_attempts_and_its_stream_ends(
    hostile_server: ServerProcess, channel: grpc.aio.Channel, function: str
) -> None:
    name = "poison-" + function.rpartition(":")[2]
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    await actions.CreateAction(
        action(name, function, retry_policy={"max_retries": 2, "initial_delay_ms": 10, "max_delay_ms": 50})
    )
    async with stays_responsive(hostile_server):
        updates = await execute(channel, name)
    assert updates[-1].kind == executions_pb2.ExecutionUpdate.KIND_DEAD_LETTERED, updates[-1]
    assert [u.attempt for u in updates if u.kind == executions_pb2.ExecutionUpdate.KIND_ATTEMPT_FAILED] == [1, 2]
    assert updates[-1].attempt == 3
    ex = await final_execution(channel, updates[-1].execution)
    assert ex.status == executions_pb2.EXECUTION_STATUS_DEAD_LETTERED
    assert len(ex.attempts) == 3
    dead = await executions_pb2_grpc.ExecutionServiceStub(channel).ListDeadLetters(
        executions_pb2.ListDeadLettersRequest(parent=ADMIN, page_size=100)
    )
    assert ex.name in [d.name for d in dead.executions]


async def test_a_poison_template_ends_its_execute_stream_at_once(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    await actions.CreateAction(
        action(
            "poison-template",
            "shop.handlers:quick",
            {"channel": "{{ '{0}'.format_map(data) }}"},  # IndexError inside str.format_map
            retry_policy={"max_retries": 2, "initial_delay_ms": 10},
        )
    )
    updates = await execute(channel, "poison-template")
    assert updates[-1].kind == executions_pb2.ExecutionUpdate.KIND_FAILED
    assert updates[-1].error.type == "template_error" and not updates[-1].error.retryable
    assert "index out of range" in updates[-1].error.message
    await assert_alive(hostile_server)


async def test_templates_that_build_big_values_fail_without_taking_the_memory(
    hostile_server: ServerProcess, channel: grpc.aio.Channel
) -> None:
    kept = "{% set b %}{% for i in range(data.k) %}{{ data.s * 900000 }}{% endfor %}{% endset %}{{ b|length }}"
    actions = actions_pb2_grpc.ActionServiceStub(channel)
    await actions.CreateAction(action("big-values", "shop.handlers:quick", {"kept": kept}))
    events = events_pb2_grpc.EventServiceStub(channel)

    async def publish(count: int) -> list[executions_pb2.Execution]:
        data = json.dumps({"s": "a", "n": 10**8, "k": 10**4})
        published = await events.PublishEvents(
            events_pb2.PublishEventsRequest(
                parent=ADMIN, events=[events_pb2.Event(type="templates.big_values", data_json=data)] * count
            )
        )
        return [await final_execution(channel, ex.name) for r in published.results for ex in r.executions]

    await publish(2)  # the first ones warm up what any execution brings in
    before = rss_bytes(hostile_server.pid)
    async with stays_responsive(hostile_server):
        finals = await publish(32)
    grown = rss_bytes(hostile_server.pid) - before
    assert len(finals) == 32
    for ex in finals:
        assert ex.status == executions_pb2.EXECUTION_STATUS_FAILED and ex.error.type == "template_error", ex
        assert "built more than" in ex.error.message
    assert grown < 64 * 1024 * 1024, f"the server grew by {grown / 1e6:.0f} MB"
