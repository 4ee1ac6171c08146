"""The walking core through the real gRPC server, on the embedded store and on PostgreSQL:
apply → publish → match → run → store → stream, then restart and read it back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
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
from tests.e2e.conftest import ServerProcess

ADMIN = "tenants/admin"


def action(name: str, event_types: list[str], function: str, **extra: Any) -> actions_pb2.CreateActionRequest:
    parent = extra.pop("parent", ADMIN)
    body: dict[str, Any] = {
        "trigger": {"event_types": event_types, "conditions": extra.pop("conditions", [])},
        "handler": {"type": "python", "config": {"function": function, **extra.pop("config", {})}},
        **extra,
    }
    return actions_pb2.CreateActionRequest(
        parent=parent, action_id=name, action=json_format.ParseDict(body, actions_pb2.Action())
    )


async def collect_until(stream: Any, done: Any, within: float = 20.0) -> list[executions_pb2.ExecutionUpdate]:
    out: list[executions_pb2.ExecutionUpdate] = []

    async def read() -> None:
        async for update in stream:
            out.append(update)
            if done(out):
                return

    await asyncio.wait_for(read(), within)
    return out


async def test_publish_match_run_store_stream_and_restart(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)

        created = await actions.CreateAction(
            action(
                "big-order-alert",
                ["orders.created"],
                "shop.handlers:alert",
                conditions=[{"field": "data.amount", "operator": "gt", "value": 100}],
                config={"channel": "#sales-{{ data.region }}"},
                priority="PRIORITY_HIGH",
            )
        )
        assert created.version == 1 and created.enabled
        assert created.name == "tenants/admin/actions/big-order-alert"

        watch = executions.WatchExecutions(
            executions_pb2.WatchExecutionsRequest(parent=ADMIN, correlation_id="order-42")
        )
        await asyncio.sleep(0.2)  # the watch is registered server-side once the call is up

        small = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent=ADMIN,
                event=events_pb2.Event(
                    type="orders.created", data_json=json.dumps({"amount": 5}), correlation_id="order-41"
                ),
            )
        )
        assert list(small.executions) == []
        assert small.event.status == events_pb2.EVENT_STATUS_COMPLETED

        big = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent=ADMIN,
                event=events_pb2.Event(
                    type="orders.created",
                    data_json=json.dumps({"amount": 150, "order_id": 42, "region": "eu"}),
                    correlation_id="order-42",
                ),
            )
        )
        assert len(big.executions) == 1
        execution_name = big.executions[0].name

        updates = await collect_until(
            watch, lambda seen: any(u.kind == executions_pb2.ExecutionUpdate.KIND_SUCCEEDED for u in seen)
        )
        watch.cancel()
        kinds = [u.kind for u in updates]
        K = executions_pb2.ExecutionUpdate
        assert kinds[0] == K.KIND_EVENT_ACCEPTED
        assert K.KIND_SCHEDULED in kinds and K.KIND_STARTED in kinds and K.KIND_LOG in kinds
        assert kinds.index(K.KIND_SCHEDULED) < kinds.index(K.KIND_STARTED) < kinds.index(K.KIND_SUCCEEDED)
        assert all(u.correlation_id == "order-42" for u in updates)  # order-41 never shows up
        assert all(u.resume_token for u in updates)
        final = updates[-1]
        assert json.loads(final.output_json)["channel"] == "#sales-eu"

    server.restart()

    async with authorized_channel(server.target) as ch:
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        stored = await executions.GetExecution(executions_pb2.GetExecutionRequest(name=execution_name))
        assert stored.status == executions_pb2.EXECUTION_STATUS_SUCCEEDED
        assert stored.action == "tenants/admin/actions/big-order-alert" and stored.action_version == 1
        output = json.loads(stored.output_json)
        assert output["alerted"] is True and output["amount"] == 150 and output["tenant"] == "admin"
        assert output["idempotency_key"] == stored.idempotency_key
        assert len(stored.attempts) == 1 and stored.attempts[0].status == executions_pb2.EXECUTION_STATUS_SUCCEEDED
        event = await events.GetEvent(events_pb2.GetEventRequest(name=f"{ADMIN}/events/{stored.event_id}"))
        assert event.status == events_pb2.EVENT_STATUS_COMPLETED
        listed = await events.ListEvents(events_pb2.ListEventsRequest(parent=ADMIN))
        assert len(listed.events) == 2


async def test_sync_publish_waits_and_failures_are_results(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)
        await actions.CreateAction(
            action("greet", ["users.*"], "shop.handlers:Greeter", execution_mode="EXECUTION_MODE_SYNC")
        )
        await actions.CreateAction(
            action(
                "explode",
                ["users.created"],
                "shop.handlers:boom",
                execution_mode="EXECUTION_MODE_SYNC",
                priority="PRIORITY_CRITICAL",
            )
        )
        reply = await events.PublishEvent(
            events_pb2.PublishEventRequest(
                parent=ADMIN,
                wait=True,
                event=events_pb2.Event(type="users.created", data_json=json.dumps({"name": "ada"})),
            )
        )
        # critical first, then normal
        assert [e.action.rsplit("/", 1)[-1] for e in reply.executions] == ["explode", "greet"]
        failed, greeted = reply.executions
        assert failed.status == executions_pb2.EXECUTION_STATUS_FAILED
        assert failed.error.type == "ValueError" and "refused" in failed.error.message
        assert greeted.status == executions_pb2.EXECUTION_STATUS_SUCCEEDED
        assert json.loads(greeted.output_json) == {"message": "hello ada"}
        event = await events.GetEvent(events_pb2.GetEventRequest(name=reply.event.name))
        assert event.status == events_pb2.EVENT_STATUS_FAILED


async def test_execute_streams_updates_for_stored_and_inline_handlers(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        executions = executions_pb2_grpc.ExecutionServiceStub(ch)
        await actions.CreateAction(action("greet", ["users.created"], "shop.handlers:Greeter"))
        K = executions_pb2.ExecutionUpdate
        stream = executions.Execute(
            executions_pb2.ExecuteRequest(parent=ADMIN, action="greet", input_json=json.dumps({"name": "bob"}))
        )
        updates = [u async for u in stream]
        assert [u.kind for u in updates] == [K.KIND_STARTED, K.KIND_PROGRESS, K.KIND_SUCCEEDED]
        assert json.loads(updates[-1].output_json) == {"message": "hello bob"}

        inline = executions_pb2.InlineAction(handler=actions_pb2.Handler(type="python"), timeout_seconds=0.3)
        inline.handler.config.update({"function": "shop.handlers:quick", "sleep": 5})
        updates = [
            u
            async for u in executions.Execute(
                executions_pb2.ExecuteRequest(parent=ADMIN, inline=inline, input_json=json.dumps({"n": 1}))
            )
        ]
        assert updates[-1].kind == K.KIND_TIMED_OUT
        stored = await executions.GetExecution(executions_pb2.GetExecutionRequest(name=updates[-1].execution))
        assert stored.status == executions_pb2.EXECUTION_STATUS_TIMED_OUT and stored.action == ""


async def test_bad_input_is_refused_and_stores_nothing(server: ServerProcess) -> None:
    async with authorized_channel(server.target) as ch:
        actions = actions_pb2_grpc.ActionServiceStub(ch)
        events = events_pb2_grpc.EventServiceStub(ch)

        async def refused(call: Any) -> Any:
            try:
                await call
            except grpc.aio.AioRpcError as err:
                return err, from_rpc_error(err)
            raise AssertionError("the call was accepted")

        cases = [
            (
                events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent=ADMIN, event=events_pb2.Event(type="Users..Created", data_json="{}")
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_EVENT_TYPE",
                "event.type",
            ),
            (
                events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent=ADMIN, event=events_pb2.Event(type="users.created", data_json="[1, 2]")
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_EVENT_DATA",
                "event.data_json",
            ),
            (
                events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent=ADMIN, event=events_pb2.Event(type="users.created", data_json="{nope")
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "MALFORMED_JSON",
                "event.data_json",
            ),
            (
                events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent=ADMIN,
                        event=events_pb2.Event(type="users.created", data_json=json.dumps({"blob": "x" * 300_000})),
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "PAYLOAD_TOO_LARGE",
                "event.data_json",
            ),
            (
                events.PublishEvent(
                    events_pb2.PublishEventRequest(
                        parent="tenants/nobody", event=events_pb2.Event(type="users.created", data_json="{}")
                    )
                ),
                grpc.StatusCode.NOT_FOUND,
                "TENANT_NOT_FOUND",
                None,
            ),
            (
                actions.CreateAction(
                    actions_pb2.CreateActionRequest(
                        parent=ADMIN,
                        action_id="a1",
                        action=json_format.ParseDict(
                            {"trigger": {"event_types": ["users.created"]}, "handler": {"type": "telepathy"}},
                            actions_pb2.Action(),
                        ),
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "UNKNOWN_HANDLER_TYPE",
                "handler.type",
            ),
            (
                actions.CreateAction(action("a2", ["users.created"], "shop.handlers:does_not_exist")),
                grpc.StatusCode.INVALID_ARGUMENT,
                "UNKNOWN_HANDLER_FUNCTION",
                "handler.config.function",
            ),
            (
                actions.CreateAction(action("a3", ["users.created"], "no_such_module:fn")),
                grpc.StatusCode.INVALID_ARGUMENT,
                "UNKNOWN_HANDLER_FUNCTION",
                "handler.config.function",
            ),
            (
                actions.CreateAction(
                    action(
                        "a4",
                        ["users.created"],
                        "shop.handlers:alert",
                        conditions=[
                            {"field": "data.amount", "operator": "gt", "value": 1},
                            {"field": "data.amount", "operator": "resembles", "value": 1},
                        ],
                    )
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_CONDITION",
                "trigger.conditions[1].operator",
            ),
            (
                actions.CreateAction(action("a5", ["users..created"], "shop.handlers:alert")),
                grpc.StatusCode.INVALID_ARGUMENT,
                None,
                "trigger.event_types[0]",
            ),
            (
                actions.GetAction(actions_pb2.GetActionRequest(name=f"{ADMIN}/actions/missing")),
                grpc.StatusCode.NOT_FOUND,
                "ACTION_NOT_FOUND",
                None,
            ),
        ]
        for call, code, reason, field in cases:
            err, typed = await refused(call)
            assert err.code() == code, (err.code(), err.details())
            if reason:
                assert typed.reason == reason, (typed.reason, typed.message)
            if field:
                assert field in [v.field for v in typed.violations], (typed.violations, typed.message)

        assert len((await events.ListEvents(events_pb2.ListEventsRequest(parent=ADMIN))).events) == 0
        assert len((await actions.ListActions(actions_pb2.ListActionsRequest(parent=ADMIN))).actions) == 0
