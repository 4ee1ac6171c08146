"""ActionService: CRUD, enable and disable."""

from __future__ import annotations

import grpc

from neoactions.domain import convert, names
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.server.store import ActionFilter
from neoactions.v1 import actions_pb2, actions_pb2_grpc


class ActionServicer(actions_pb2_grpc.ActionServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def CreateAction(
        self, request: actions_pb2.CreateActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant = names.parse_tenant(request.parent)
        action = convert.action_from_pb(request.action, tenant, request.action_id)
        created = await self._engine.create_action(caller_of(context), action, validate_only=request.validate_only)
        return convert.action_to_pb(created)

    @unary
    async def GetAction(
        self, request: actions_pb2.GetActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        return convert.action_to_pb(await self._engine.get_action(caller_of(context), tenant, name, request.version))

    @unary
    async def ListActions(
        self, request: actions_pb2.ListActionsRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.ListActionsResponse:
        tenant = names.parse_tenant(request.parent)
        flt = ActionFilter(
            enabled=request.enabled if request.HasField("enabled") else None,
            handler_type=request.handler_type,
            tag=request.tag,
            search=request.search,
        )
        page = await self._engine.list_actions(caller_of(context), tenant, request.page_size, request.page_token, flt)
        return actions_pb2.ListActionsResponse(
            actions=[convert.action_to_pb(a) for a in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def UpdateAction(
        self, request: actions_pb2.UpdateActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.action.name, "actions", "action.name")
        caller = caller_of(context)
        current = await self._engine.get_action(caller, tenant, name)
        patch = convert.action_from_pb(request.action, tenant, name)
        updated = convert.apply_update_mask(current, patch, request.update_mask.paths)
        stored = await self._engine.update_action(
            caller, updated, request.expected_version or None, validate_only=request.validate_only
        )
        return convert.action_to_pb(stored)

    @unary
    async def DeleteAction(
        self, request: actions_pb2.DeleteActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.DeleteActionResponse:
        tenant, name = names.parse_child(request.name, "actions")
        await self._engine.delete_action(caller_of(context), tenant, name)
        return actions_pb2.DeleteActionResponse()

    @unary
    async def EnableAction(
        self, request: actions_pb2.EnableActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        return convert.action_to_pb(await self._engine.set_action_enabled(caller_of(context), tenant, name, True))

    @unary
    async def DisableAction(
        self, request: actions_pb2.DisableActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        return convert.action_to_pb(await self._engine.set_action_enabled(caller_of(context), tenant, name, False))

    @unary
    async def TestAction(
        self, request: actions_pb2.TestActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.TestActionResponse:
        tenant = names.parse_tenant(request.parent)
        event = convert.test_event_from_pb(request.event, tenant)
        action = names.parse_action_ref(request.action, tenant) if request.action else ""
        results = []
        explained = await self._engine.test_event(caller_of(context), tenant, event, action, request.execute)
        for explanation, execution in explained:
            result = convert.explanation_to_pb(tenant, explanation)
            if execution is not None:
                result.execution = names.execution_name(tenant, execution.id)
                result.execution_status = execution.status.value
                result.output_json = convert.dump_json(execution.output)
            results.append(result)
        return actions_pb2.TestActionResponse(results=results)
