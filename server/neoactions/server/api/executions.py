"""ExecutionService: run an action and stream it; get, list and watch executions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc

from neoactions.domain import convert, names
from neoactions.domain.errors import InvalidArgument
from neoactions.domain.model import utcnow
from neoactions.server.api.callers import caller_of
from neoactions.server.api.errors import streaming, unary
from neoactions.server.bus import UpdateFilter
from neoactions.server.engine import Engine
from neoactions.server.store import ExecutionFilter
from neoactions.server.workflows.rows import StepRun
from neoactions.v1 import executions_pb2, executions_pb2_grpc


class ExecutionServicer(executions_pb2_grpc.ExecutionServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @streaming
    async def Execute(
        self, request: executions_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[executions_pb2.ExecutionUpdate]:
        tenant = names.parse_tenant(request.parent)
        data = convert.parse_json(request.input_json, "input_json", default={})
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument.field("action", "name an action or give an inline handler")
        remaining = context.time_remaining()
        updates = self._engine.execute(
            caller_of(context),
            tenant,
            data,
            action_name=names.parse_action_ref(request.action, tenant) if target == "action" else "",
            inline=convert.inline_from_pb(request.inline) if target == "inline" else None,
            correlation_id=request.correlation_id,
            idempotency_key=request.idempotency_key,
            deadline=utcnow() + timedelta(seconds=remaining) if remaining is not None else None,
        )
        try:
            async for update, token in updates:
                yield convert.update_to_pb(update, token)
        finally:
            await updates.aclose()

    @unary
    async def GetExecution(
        self, request: executions_pb2.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.Execution:
        tenant, execution_id = names.parse_child(request.name, "executions")
        caller = caller_of(context)
        ex = await self._engine.get_execution(caller, tenant, execution_id)
        msg = convert.execution_to_pb(ex)
        if ex.handler_type == "workflow":
            steps = await self._engine.workflow_steps(caller, tenant, execution_id)
            msg.steps.extend(step_to_pb(tenant, s) for s in steps)
        return msg

    @unary
    async def ListExecutions(
        self, request: executions_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.ListExecutionsResponse:
        tenant = names.parse_tenant(request.parent)
        flt = ExecutionFilter(
            action_name=names.parse_action_ref(request.action, tenant) if request.action else "",
            status=convert.execution_status_from_pb(request.status),
            event_id=request.event_id,
            correlation_id=request.correlation_id,
            start_time=convert.opt_dt(request, "start_time"),
            end_time=convert.opt_dt(request, "end_time"),
        )
        page = await self._engine.list_executions(
            caller_of(context), tenant, flt, request.page_size, request.page_token
        )
        return executions_pb2.ListExecutionsResponse(
            executions=[convert.execution_to_pb(e) for e in page.items], next_page_token=page.next_page_token
        )

    @streaming
    async def WatchExecutions(
        self, request: executions_pb2.WatchExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[executions_pb2.ExecutionUpdate]:
        tenant = names.parse_tenant(request.parent)
        flt = UpdateFilter(
            tenant=tenant,
            action_name=names.parse_action_ref(request.action, tenant) if request.action else "",
            event_id=request.event_id,
            correlation_id=request.correlation_id,
            execution_id=request.execution_id,
        )
        updates = self._engine.watch(caller_of(context), flt, request.resume_token)
        try:
            async for update, token in updates:
                yield convert.update_to_pb(update, token)
        finally:
            await updates.aclose()

    @unary
    async def CancelExecution(
        self, request: executions_pb2.CancelExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.Execution:
        tenant, execution_id = names.parse_child(request.name, "executions")
        cancelled = await self._engine.cancel_execution(caller_of(context), tenant, execution_id, request.reason)
        return convert.execution_to_pb(cancelled)

    @unary
    async def RetryExecution(
        self, request: executions_pb2.RetryExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.Execution:
        tenant, execution_id = names.parse_child(request.name, "executions")
        return convert.execution_to_pb(await self._engine.retry_execution(caller_of(context), tenant, execution_id))

    @unary
    async def ListDeadLetters(
        self, request: executions_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.ListDeadLettersResponse:
        tenant = names.parse_tenant(request.parent)
        flt = _dead_letter_filter(request.filter, tenant)
        page = await self._engine.list_dead_letters(
            caller_of(context), tenant, flt, request.page_size, request.page_token
        )
        return executions_pb2.ListDeadLettersResponse(
            executions=[convert.execution_to_pb(e) for e in page.items], next_page_token=page.next_page_token
        )

    @unary
    async def RequeueDeadLetters(
        self, request: executions_pb2.RequeueDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.RequeueDeadLettersResponse:
        tenant = names.parse_tenant(request.parent)
        count = await self._engine.requeue_dead_letters(
            caller_of(context), tenant, _dead_letter_filter(request.filter, tenant)
        )
        return executions_pb2.RequeueDeadLettersResponse(requeued_count=count)

    @unary
    async def PauseExecution(
        self, request: executions_pb2.PauseExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.Execution:
        tenant, execution_id = names.parse_child(request.name, "executions")
        return convert.execution_to_pb(await self._engine.pause_execution(caller_of(context), tenant, execution_id))

    @unary
    async def ResumeExecution(
        self, request: executions_pb2.ResumeExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executions_pb2.Execution:
        tenant, execution_id = names.parse_child(request.name, "executions")
        return convert.execution_to_pb(await self._engine.resume_execution(caller_of(context), tenant, execution_id))


def step_to_pb(tenant: str, s: StepRun) -> executions_pb2.WorkflowStepState:
    """A workflow run's stored step as its message."""
    return executions_pb2.WorkflowStepState(
        step=s.step,
        index=s.index,
        status=s.status.value,
        child_execution=names.execution_name(tenant, s.child_id) if s.child_id else "",
        attempts=s.attempts,
        output_json=convert.dump_json(s.output),
        error=convert.error_to_pb(s.error),
        start_time=convert.ts(s.started_at),
        end_time=convert.ts(s.finished_at),
        wake_time=convert.ts(s.wake_at),
    )


def _dead_letter_filter(msg: executions_pb2.DeadLetterFilter, tenant: str) -> ExecutionFilter:
    return ExecutionFilter(
        action_name=names.parse_action_ref(msg.action, tenant) if msg.action else "",
        error_type=msg.error_type,
        start_time=convert.opt_dt(msg, "start_time"),
        end_time=convert.opt_dt(msg, "end_time"),
    )
