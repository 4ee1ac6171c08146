"""ActionService: CRUD, enable and disable."""

from __future__ import annotations

import grpc

from neoactions.server.api import convert, names
from neoactions.server.api.errors import unary
from neoactions.server.engine import Engine
from neoactions.v1 import actions_pb2, actions_pb2_grpc


class ActionServicer(actions_pb2_grpc.ActionServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @unary
    async def CreateAction(
        self, request: actions_pb2.CreateActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant = await self._engine.tenant(names.parse_tenant(request.parent))
        action = convert.action_from_pb(request.action, tenant, request.action_id)
        created = await self._engine.actions.create(action, validate_only=request.validate_only)
        return convert.action_to_pb(created)

    @unary
    async def GetAction(
        self, request: actions_pb2.GetActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        await self._engine.tenant(tenant)
        return convert.action_to_pb(await self._engine.actions.get(tenant, name, request.version))

    @unary
    async def ListActions(
        self, request: actions_pb2.ListActionsRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.ListActionsResponse:
        tenant = await self._engine.tenant(names.parse_tenant(request.parent))
        page = await self._engine.actions.list(tenant, request.page_size, request.page_token)
        return actions_pb2.ListActionsResponse(
            actions=[convert.action_to_pb(a) for a in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def UpdateAction(
        self, request: actions_pb2.UpdateActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.action.name, "actions", "action.name")
        await self._engine.tenant(tenant)
        current = await self._engine.actions.get(tenant, name)
        patch = convert.action_from_pb(request.action, tenant, name)
        updated = convert.apply_update_mask(current, patch, request.update_mask.paths)
        stored = await self._engine.actions.update(
            updated, request.expected_version or None, validate_only=request.validate_only
        )
        return convert.action_to_pb(stored)

    @unary
    async def DeleteAction(
        self, request: actions_pb2.DeleteActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.DeleteActionResponse:
        tenant, name = names.parse_child(request.name, "actions")
        await self._engine.tenant(tenant)
        await self._engine.actions.delete(tenant, name)
        return actions_pb2.DeleteActionResponse()

    @unary
    async def EnableAction(
        self, request: actions_pb2.EnableActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        await self._engine.tenant(tenant)
        return convert.action_to_pb(await self._engine.actions.set_enabled(tenant, name, True))

    @unary
    async def DisableAction(
        self, request: actions_pb2.DisableActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.Action:
        tenant, name = names.parse_child(request.name, "actions")
        await self._engine.tenant(tenant)
        return convert.action_to_pb(await self._engine.actions.set_enabled(tenant, name, False))

    @unary
    async def TestAction(
        self, request: actions_pb2.TestActionRequest, context: grpc.aio.ServicerContext
    ) -> actions_pb2.TestActionResponse:
        tenant = await self._engine.tenant(names.parse_tenant(request.parent))
        event = convert.test_event_from_pb(request.event, tenant)
        action = names.parse_action_ref(request.action, tenant) if request.action else ""
        results = []
        for explanation, execution in await self._engine.test_event(tenant, event, action, request.execute):
            result = convert.explanation_to_pb(tenant, explanation)
            if execution is not None:
                result.execution = names.execution_name(tenant, execution.id)
                result.execution_status = execution.status.value
                result.output_json = convert.dump_json(execution.output)
            results.append(result)
        return actions_pb2.TestActionResponse(results=results)
