"""``neoactions execute`` and ``neoactions executions list|get|watch|pause|resume``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

from neoactions.client._async import AsyncClient
from neoactions.client._sync import Client
from neoactions.client.cli import _render
from neoactions.client.cli._context import CliState, JsonOpt, TenantOpt, json_argument
from neoactions.client.cli._steps import print_steps
from neoactions.domain.errors import Internal, NeoActionsError, Unavailable
from neoactions.domain.model import UNFINISHED_STATUSES, Execution, ExecutionStatus

app = typer.Typer(help="Inspect and follow executions.", no_args_is_help=True)


#: an inline handler stopped by ``--timeout`` gets this long to report its end before the call gives up
_SETTLE_SECONDS = 5.0


def execute(
    ctx: typer.Context,
    action: Annotated[
        str | None, typer.Argument(help="The action to run (omit with --handler-type).", show_default=False)
    ] = None,
    input: Annotated[str, typer.Option("--input", "-i", help="The input, JSON (or @file.json).")] = "{}",
    handler_type: Annotated[
        str | None, typer.Option(help="Run an inline handler of this type instead of a stored action.")
    ] = None,
    config: Annotated[str | None, typer.Option(help="The inline handler's config, a JSON object.")] = None,
    timeout_seconds: Annotated[
        float, typer.Option(help="The inline handler's own limit (default: --timeout, else 30).", show_default=False)
    ] = 0.0,
    correlation_id: Annotated[str, typer.Option(help="Ties the execution to a flow.")] = "",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Stream every update as it happens.")] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Run an action (or an inline handler) now. Exits 1 when the execution does not succeed.

    With --timeout SECONDS the execution is stopped once it has run that long."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    if (action is None) == (handler_type is None):
        raise typer.BadParameter("name an ACTION or give --handler-type (not both)", param_hint="ACTION")
    if config is not None and handler_type is None:
        raise typer.BadParameter("only with --handler-type", param_hint="--config")
    limit = state.timeout
    target: Any = action
    deadline = limit
    if handler_type is not None:
        target = {"type": handler_type, "config": json_argument(config, "--config") or {}}
        timeout_seconds = timeout_seconds or limit or 0.0
        if limit is not None:
            # the server stops the handler at the limit and reports it: wait for that report
            deadline = limit + _SETTLE_SECONDS
    data = json_argument(input, "--input", want_object=False)
    with state.client() as client:
        execution_id = ""
        stopped = False
        try:
            for update in client.execute(
                target, data, correlation_id=correlation_id, timeout_seconds=timeout_seconds, timeout=deadline
            ):
                execution_id = update.execution_id or execution_id
                if watch:
                    _render.streamed(update, as_json=state.json, with_ids=False)
        except NeoActionsError as exc:
            if exc.reason != "DEADLINE_EXCEEDED" or limit is None:
                raise
            if not execution_id:
                raise Unavailable(
                    f"the execution did not start within --timeout {limit:g}s", reason="EXECUTE_TIMEOUT"
                ) from None
            stopped = True
        if not execution_id:
            raise Internal("the Execute stream ended without naming its execution", reason="STREAM_ENDED")
        execution = _settled(client, execution_id) if stopped else client.get_execution(execution_id)
    if state.json and not watch:
        _render.emit_json(execution)
    elif not state.json:
        if watch:
            _render.out().print()
        _render.execution_detail(execution)
    if stopped and not execution.status.is_final:
        _render.error(
            Unavailable(
                f"execution {execution_id} did not end within --timeout {limit:g}s and goes on in the server"
                f" (follow it with `neoactions executions watch --execution {execution_id}`)",
                reason="EXECUTE_TIMEOUT",
            ),
            as_json=state.json,
        )
    if execution.status is not ExecutionStatus.SUCCEEDED:
        raise typer.Exit(1)


def _settled(client: Client, execution_id: str) -> Execution:
    """The execution once the server recorded its end (a stopped call ends it), or as it stands
    after :data:`_SETTLE_SECONDS`."""
    give_up = time.monotonic() + _SETTLE_SECONDS
    while True:
        execution = client.get_execution(execution_id)
        if execution.status.is_final or time.monotonic() > give_up:
            return execution
        time.sleep(0.05)


@app.command("list")
def list_(
    ctx: typer.Context,
    action: Annotated[str, typer.Option(help="Only this action's executions.")] = "",
    status: Annotated[ExecutionStatus | None, typer.Option(help="Only executions in this status.")] = None,
    event: Annotated[str, typer.Option(help="Only the executions of this event id.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Only executions with this correlation id.")] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0 = all).")] = 50,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Executions matching the filters."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        executions = []
        for ex in client.iter_executions(action=action, status=status, event_id=event, correlation_id=correlation_id):
            executions.append(ex)
            if limit and len(executions) >= limit:
                break
    if state.json:
        _render.emit_json(executions)
    else:
        _render.executions_table(executions)


@app.command()
def get(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The execution id.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """One execution with its attempts."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.get_execution(execution_id)
        steps = client.workflow_steps(execution_id) if execution.handler_type == "workflow" else []
    if state.json and execution.handler_type == "workflow":
        _render.emit_json({**_render.jsonable(execution), "steps": steps})
        return
    _render.execution(execution, as_json=state.json)
    if steps:
        print_steps(execution, steps)


@app.command()
def pause(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The workflow run's execution id.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Pause a workflow run: its steps in flight finish, no new step starts."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.pause_execution(execution_id)
    _render.execution(execution, as_json=state.json)


@app.command()
def resume(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(help="The workflow run's execution id.", show_default=False)],
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Resume a paused workflow run."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    with state.client() as client:
        execution = client.resume_execution(execution_id)
    _render.execution(execution, as_json=state.json)


@app.command()
def watch(
    ctx: typer.Context,
    action: Annotated[str, typer.Option(help="Only this action's updates.")] = "",
    event: Annotated[str, typer.Option(help="Only the fan-out of this event id.")] = "",
    correlation_id: Annotated[str, typer.Option(help="Only updates with this correlation id.")] = "",
    execution: Annotated[str, typer.Option(help="Only this execution's updates.")] = "",
    resume_token: Annotated[str, typer.Option(help="Continue after the update that carried this token.")] = "",
    count: Annotated[int, typer.Option(min=0, help="Stop after this many updates (0 = no limit).")] = 0,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Stop once no execution matching the filters is pending, scheduled or running"
            " (right away when none is).",
        ),
    ] = False,
    tenant: TenantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Stream updates as they happen, until interrupted (Ctrl-C), --count or --until-idle."""
    state = CliState.of(ctx, tenant=tenant, json=json_)
    follow = _Follow(action, event, correlation_id, execution, resume_token, count, until_idle)
    try:
        shown = asyncio.run(follow.run(state))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if until_idle and not state.json:
        _render.err().print(f"[dim]no unfinished executions: stopped after {shown} update(s)[/]")


#: how often ``--until-idle`` asks whether anything is unfinished
_IDLE_POLL_SECONDS = 0.5


class _Follow:
    """One ``executions watch``: the stream, and with ``until_idle`` the checks that end it."""

    def __init__(
        self,
        action: str,
        event: str,
        correlation_id: str,
        execution: str,
        resume_token: str,
        count: int,
        until_idle: bool,
    ) -> None:
        self.action, self.event, self.correlation_id, self.execution = action, event, correlation_id, execution
        self.resume_token, self.count, self.until_idle = resume_token, count, until_idle
        self.shown = 0

    async def run(self, state: CliState) -> int:
        async with state.async_client() as client:
            stream = asyncio.ensure_future(self._show(client, state.json))
            try:
                while self.until_idle and not stream.done():
                    await asyncio.wait({stream}, timeout=_IDLE_POLL_SECONDS)
                    if not stream.done() and not await self._unfinished(client):
                        # updates of what just ended may still be on their way
                        await asyncio.wait({stream}, timeout=_IDLE_POLL_SECONDS)
                        break
                if not self.until_idle or stream.done():
                    await stream
            finally:
                if not stream.done():
                    stream.cancel()
                    await asyncio.gather(stream, return_exceptions=True)
        return self.shown

    async def _show(self, client: AsyncClient, as_json: bool) -> None:
        updates = client.watch_executions(
            action=self.action,
            event_id=self.event,
            correlation_id=self.correlation_id,
            execution_id=self.execution,
            resume_token=self.resume_token,
            timeout=None,
        )
        async for update in updates:
            _render.streamed(update, as_json=as_json)
            self.shown += 1
            if self.count and self.shown >= self.count:
                return

    async def _unfinished(self, client: AsyncClient) -> bool:
        if self.execution:
            return not (await client.get_execution(self.execution)).status.is_final
        for status in UNFINISHED_STATUSES:
            page = await client.list_executions(
                action=self.action,
                status=status,
                event_id=self.event,
                correlation_id=self.correlation_id,
                page_size=1,
            )
            if page.items:
                return True
        return False


__all__ = ["app", "execute"]
