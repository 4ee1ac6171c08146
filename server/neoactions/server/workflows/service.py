"""The workflow engine's entry: the ``workflow`` handler type, and the engine's hooks into it.

:class:`Workflows` owns the parts a drive uses (the store, the update bus, the scheduler's
wake-ups, the renderer, the action catalog) and the per-tenant wait indexes: the steps
waiting for an event, filed as a second kind of subscriber in the matcher's index
(:class:`~neoactions.server.matching.index.WaitIndex`), reloaded from the store at start.
The engine calls :meth:`child_finished` when an execution with a parent ends,
:meth:`events_published` after a publish, and :meth:`pause` / :meth:`resume` /
:meth:`cancel_steps` for the control RPCs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

from neoactions.domain.errors import FailedPrecondition, InvalidArgument, NeoActionsError, NotFound
from neoactions.domain.model import (
    JSON,
    Action,
    Event,
    Execution,
    ExecutionError,
    ExecutionStatus,
    ExecutionUpdate,
    HandlerSpec,
    JSONObject,
    Trigger,
    UpdateKind,
    condition_from_dict,
    utcnow,
)
from neoactions.server.bus import UpdateBus
from neoactions.server.changes import ActionChangeFeed, LocalChangeFeed
from neoactions.server.engine.wakeup import DueWork
from neoactions.server.matching import CelLimits, compile_trigger
from neoactions.server.matching.compiler import CompiledTrigger
from neoactions.server.matching.index import WaitIndex
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    HandlerType,
    RunnerUpdate,
    Suspend,
)
from neoactions.server.store import Store
from neoactions.server.templating import ConfigRenderer
from neoactions.server.workflows.conditions import StepCondition, compile_step_condition
from neoactions.server.workflows.driver import STEP_UPDATE_KINDS, Driver
from neoactions.server.workflows.rows import StepRun, StepStatus
from neoactions.server.workflows.spec import TOP_KEYS, Checks, Step, Workflow, check_workflow, parse_workflow

log = logging.getLogger(__name__)

HANDLER_TYPE = "workflow"
#: the change feed's pseudo-tenant for new event waits: other processes index them too
WAITS_TOPIC = "*workflow-waits"
#: a drive that met a store error tries again this much later (the run stays waiting)
RETRY_DRIVE_SECONDS = 2.0
_PARSED_KEPT = 512

CONFIG_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["steps"],
    "properties": {
        "variables": {"type": "object"},
        "steps": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "error_handling": {"type": "object"},
        "output": {},
    },
    "additionalProperties": False,
}


class WorkflowRunner:
    """The ``workflow`` runner: each attempt drives the run once."""

    def __init__(self, service: Workflows) -> None:
        self._service = service

    async def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        yield await self._service.drive(config, data, ctx)


class Workflows:
    def __init__(
        self,
        store: Store,
        bus: UpdateBus,
        due: DueWork,
        renderer: ConfigRenderer,
        registry: HandlerRegistry,
        actions: Callable[[str, str], Awaitable[Action]],
        cancel: Callable[[str, str, str], Awaitable[Any]],
        cel_limits: CelLimits,
        changes: ActionChangeFeed | None = None,
        run_here: Callable[[Sequence[Execution]], Callable[[], None]] | None = None,
        wake: Callable[[str, str, bool], Awaitable[Execution]] | None = None,
    ) -> None:
        #: leases steps about to be stored to this process and queues them here once stored
        self._run_here = run_here
        #: wakes a waiting run: driven next in this process at once when it has room, else
        #: claimed by a scheduler; its flag ``False`` always leaves the run to a claim
        self._wake = wake or self._wake_for_claim
        #: woken runs are driven in this process when it has room (a benchmark turns it off)
        self.wake_here = True
        self._changes: ActionChangeFeed = changes or LocalChangeFeed()
        self.store = store
        self._bus = bus
        self._due = due
        self._renderer = renderer
        self._registry = registry
        self._actions = actions
        self._cancel = cancel
        self._cel_limits = cel_limits
        self._driver = Driver(self)
        self._parsed: OrderedDict[str, Workflow] = OrderedDict()
        self._conditions: dict[str, StepCondition] = {}
        #: per tenant, the event waits: the index, and per wait id its row's key and start
        self._waits: dict[str, WaitIndex] = {}
        self._wait_rows: dict[str, dict[str, StepRun]] = {}
        self._background: set[asyncio.Task[None]] = set()
        #: drives' writes of rows and children, finished even when their attempt is stopped
        self._writes: set[asyncio.Task[None]] = set()
        #: runs that news came for while they were driving: woken once their suspension is recorded
        self._pending_wakes: dict[tuple[str, str], None] = {}

    # --- the handler type ------------------------------------------------------------------
    def handler_type(self) -> HandlerType:
        return HandlerType(
            name=HANDLER_TYPE,
            runner=WorkflowRunner(self),
            config_schema=CONFIG_SCHEMA,
            description="A durable graph of steps (handlers, actions, variables, waits, event waits, fan-out)",
            validate=self.validate,
            raw_config_keys=TOP_KEYS,
        )

    def validate(self, config: JSONObject) -> None:
        """Refuse, naming the step and field, what a workflow may not hold (run at save)."""
        check_workflow(
            config,
            Checks(handler=self._check_handler, templates=self._check_templates, cel=self._check_cel,
                   event_type=self._check_event_type),
        )  # fmt: skip

    def _check_handler(self, spec: HandlerSpec, path: str) -> None:
        handler_type = self._registry.get(spec.type, f"{path}.type", spec.version)
        handler_type.check_config(spec.config, f"{path}.config")
        self._renderer.check(spec.config, f"{path}.config", handler_type.raw_config_keys)

    def _check_templates(self, value: JSON, path: str) -> None:
        self._renderer.check(value, path)

    def _check_cel(self, expression: str, path: str) -> None:
        compile_step_condition(expression, path, self._cel_limits)

    def _check_event_type(self, pattern: str, path: str) -> None:
        compile_trigger(Trigger(event_types=[pattern]), path, self._cel_limits)

    def parsed(self, config: JSONObject) -> Workflow:
        key = json.dumps(config, sort_keys=True, default=str)
        wf = self._parsed.get(key)
        if wf is None:
            wf = self._parsed[key] = parse_workflow(config)
            if len(self._parsed) > _PARSED_KEPT:
                self._parsed.popitem(last=False)
        return wf

    def condition(self, step: Step) -> StepCondition:
        found = self._conditions.get(step.condition)
        if found is None:
            if len(self._conditions) > 4096:
                self._conditions.clear()
            found = self._conditions[step.condition] = compile_step_condition(
                step.condition, f"{step.path}.condition", self._cel_limits
            )
        return found

    async def drive(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> RunnerUpdate:
        try:
            wf = self.parsed(config)
        except InvalidArgument as exc:
            return Failure.of("invalid_workflow", exc.message)
        try:
            return await self._driver.drive(wf, data, ctx)
        except asyncio.CancelledError:
            raise
        except NeoActionsError as exc:
            # the store failed mid-drive: what was written is consistent; drive again soon
            log.warning("workflow %s: drive failed, retrying: %s", ctx.execution_id, exc)
            return Suspend(utcnow() + timedelta(seconds=RETRY_DRIVE_SECONDS), None, f"retrying: {exc.message}")

    # --- what a drive uses ---------------------------------------------------------------
    async def render(self, template: JSON, context: JSONObject) -> JSON:
        return await self._renderer.render_async(template, context)

    async def envelope(self, run: Execution) -> JSONObject | None:
        if not run.event_id:
            return None
        try:
            return (await self.store.get_event(run.tenant, run.event_id)).envelope()
        except NotFound:
            return None

    async def action(self, tenant: str, name: str) -> Action:
        return await self._actions(tenant, name)

    async def start_children(self, run: Execution, children: Sequence[Execution]) -> None:
        """Store the children; those leased here run here, the others are claimed when due."""
        submit = self._run_here(children) if self._run_here is not None else None
        await self.store.append(run.tenant, [], list(children))
        now = utcnow()
        for child in children:
            self._bus.publish(ExecutionUpdate.about(child, UpdateKind.SCHEDULED, message=f"step of {run.id}"))
            if not child.lease_owner:
                self._due.due(child, now)
        if submit is not None:
            submit()

    async def cancel_children(self, run: Execution, rows: Sequence[StepRun]) -> None:
        for row in rows:
            if row.child_id:
                with contextlib.suppress(FailedPrecondition, NotFound):
                    await self._cancel(run.tenant, row.child_id, "its workflow ended")

    def announce_step(self, run: Execution, row: StepRun, message: str = "") -> None:
        kind = STEP_UPDATE_KINDS.get(row.status)
        if kind is None:
            return
        if row.status is StepStatus.RUNNING and not row.child_id:
            kind = UpdateKind.STEP_SCHEDULED
        self._bus.publish(
            ExecutionUpdate.about(
                run,
                kind,
                step=row.label,
                message=message or row.status.value,
                output=row.output if row.status.is_final else None,
                error=row.error if row.status in (StepStatus.FAILED, StepStatus.CANCELLED) else None,
                attempt=row.attempts,
            )
        )

    # --- event waits -----------------------------------------------------------------------
    def compile_wait(self, wait: JSON) -> CompiledTrigger:
        if not isinstance(wait, dict):
            raise InvalidArgument.field("wait_for_event", "not a wait")
        try:
            conditions = [condition_from_dict(c) for c in wait.get("conditions") or []]
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgument.field("wait_for_event.conditions", f"invalid condition: {exc}") from None
        trigger = Trigger(event_types=list(wait.get("event_types") or []), conditions=conditions)
        return compile_trigger(trigger, "wait_for_event", self._cel_limits)

    def remember_wait(self, tenant: str, row: StepRun) -> None:
        try:
            compiled = self.compile_wait(row.wait)
        except InvalidArgument as exc:
            log.warning("workflow %s step %s: wait not indexed: %s", row.run_id, row.label, exc.message)
            return
        wait_id = _wait_id(row)
        self._waits.setdefault(tenant, WaitIndex()).put(wait_id, compiled)
        slim = StepRun(row.run_id, row.step, row.index, StepStatus.WAITING, started_at=row.started_at)
        self._wait_rows.setdefault(tenant, {})[wait_id] = slim

    async def waits_stored(self, tenant: str, run_id: str) -> None:
        """Tell the other server processes (through the change feed) to index the run's waits."""
        try:
            await self._changes.publish(WAITS_TOPIC, f"{tenant}/{run_id}")
        except NeoActionsError as exc:
            log.warning("other processes not told of the event waits of run %s: %s", run_id, exc)

    async def waits_changed(self, name: str, tenants: Sequence[str]) -> None:
        """What :meth:`waits_stored` told another process: index that run's waits (or, for
        ``""``, after the feed reconnected, every tenant's)."""
        tenant, _, run_id = name.partition("/")
        if not name:
            for t in tenants:
                self._waits.pop(t, None)
                self._wait_rows.pop(t, None)
            await self.load_waits(tenants)
            return
        for row in await self.store.workflow_steps(tenant, run_id):
            if row.status is StepStatus.WAITING and row.wait is not None:
                self.remember_wait(tenant, row)
            else:
                self.forget_wait(tenant, row)

    def forget_wait(self, tenant: str, row: StepRun) -> None:
        wait_id = _wait_id(row)
        index = self._waits.get(tenant)
        if index is not None:
            index.remove(wait_id)
        self._wait_rows.get(tenant, {}).pop(wait_id, None)

    def waits(self, tenant: str | None = None) -> int:
        """How many event waits are indexed (in ``tenant``, or in all)."""
        if tenant is not None:
            index = self._waits.get(tenant)
            return len(index) if index is not None else 0
        return sum(len(i) for i in self._waits.values())

    async def load_waits(self, tenants: Sequence[str]) -> int:
        """Index every stored event wait of ``tenants`` (the service starts)."""
        loaded = 0
        for tenant in tenants:
            try:
                rows = await self.store.workflow_event_waits(tenant)
            except NeoActionsError as exc:
                log.warning("event waits of tenant %s not loaded: %s", tenant, exc)
                continue
            for row in rows:
                self.remember_wait(tenant, row)
                loaded += 1
        return loaded

    async def events_published(self, tenant: str, events: Sequence[Event]) -> None:
        """Settle and wake exactly the runs waiting for these events (index lookups, no scan)."""
        index = self._waits.get(tenant)
        if index is None or not len(index):
            return
        for event in events:
            envelope = event.envelope()
            for wait_id in index.match(envelope):
                waiting = self._wait_rows.get(tenant, {}).get(wait_id)
                if waiting is None:
                    continue
                self.forget_wait(tenant, waiting)
                settled = dataclasses.replace(
                    waiting, status=StepStatus.SUCCEEDED, output=envelope, finished_at=utcnow()
                )
                if await self.store.settle_workflow_step(tenant, settled, StepStatus.WAITING):
                    with contextlib.suppress(NotFound):
                        run = await self.store.get_execution(tenant, waiting.run_id)
                        message = f"event {event.id} ({event.type}) arrived"
                        self.announce_step(run, settled, message)
                    self._spawn(self._wake_run(tenant, waiting.run_id))

    # --- waking runs ---------------------------------------------------------------------
    def child_finished(self, ex: Execution) -> None:
        """An execution ended (or suspended): if it is a workflow step, its run drives again;
        if it is a run that news came for while it was driving, it drives again now."""
        if ex.status is ExecutionStatus.WAITING:
            if self._pending_wakes.pop((ex.tenant, ex.id), None) is not None:
                self._spawn(self._wake_run(ex.tenant, ex.id))
            return
        if ex.parent_execution_id:
            self._spawn(self._wake_run(ex.tenant, ex.parent_execution_id))

    def finish_writing(self, write: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a drive's write to its end even if the drive is stopped (:meth:`stop` waits for it)."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._written)
        return task

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("a drive's write failed (the run drives again at its timer): %s", exc)

    async def stop(self) -> None:
        """Let the drives' writes finish; cancel the wakes still in flight (a run not woken
        drives again at its backstop timer)."""
        await asyncio.gather(*self._writes, return_exceptions=True)
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _wake_run(self, tenant: str, run_id: str) -> None:
        """Wake the run; if it is mid-drive, wake it once that drive has suspended it (the drive
        may have read the store before the news). A run final, or due already, needs nothing."""
        key = (tenant, run_id)
        delay = 0.05
        for _ in range(100):
            try:
                ex = await self._wake(tenant, run_id, self.wake_here)
            except NotFound:
                return
            except FailedPrecondition:
                try:
                    states = await self.store.execution_states(tenant, [run_id])
                except NeoActionsError:
                    states = {}
                state = states.get(run_id)
                if state is None or state.status.is_final or state.status is not ExecutionStatus.RUNNING:
                    if state is None or state.status is not ExecutionStatus.WAITING:
                        return
                    continue
                # mid-drive: woken when this process records its suspension (the fast way), or
                # by this loop when it is driven elsewhere (the slow way)
                self._pending_wakes[key] = None
                await asyncio.sleep(delay)
                if key not in self._pending_wakes:
                    return  # the suspension was recorded here and woke it
                delay = min(delay * 2, 1.0)
                continue
            except NeoActionsError as exc:
                log.warning("workflow run %s could not be woken (its timer will): %s", run_id, exc)
                return
            self._pending_wakes.pop(key, None)
            self._bus.publish(ExecutionUpdate.about(ex, UpdateKind.SCHEDULED, message="woken: a step changed"))
            return

    async def _wake_for_claim(self, tenant: str, run_id: str, here: bool = True) -> Execution:
        now = utcnow()
        ex = await self.store.wake_execution(tenant, run_id, now)
        self._due.due(ex, now)
        return ex

    # --- control ---------------------------------------------------------------------------
    async def pause(self, run: Execution) -> None:
        _check_run(run)
        await self.store.set_workflow_paused(run.tenant, run.id, True)
        self._bus.publish(ExecutionUpdate.about(run, UpdateKind.LOG, message="paused: no new steps start"))

    async def resume(self, run: Execution) -> None:
        _check_run(run)
        await self.store.set_workflow_paused(run.tenant, run.id, False)
        self._bus.publish(ExecutionUpdate.about(run, UpdateKind.LOG, message="resumed"))
        self._spawn(self._wake_run(run.tenant, run.id))

    async def cancel_steps(self, run: Execution) -> None:
        """The run was cancelled: cancel its running steps and drop its event waits."""
        if run.handler_type != HANDLER_TYPE:
            return
        rows = await self.store.workflow_steps(run.tenant, run.id)
        for row in rows:
            if row.wait is not None and row.status is StepStatus.WAITING:
                self.forget_wait(run.tenant, row)
        await self.cancel_children(run, [r for r in rows if r.status is StepStatus.RUNNING])
        now = utcnow()
        ended = []
        for row in rows:
            if not row.status.is_final:
                row.status, row.finished_at, row.wake_at, row.wait = StepStatus.CANCELLED, now, None, None
                row.error = ExecutionError("cancelled", "the workflow was cancelled")
                ended.append(row)
        await self.store.save_workflow_steps(run.tenant, ended)

    async def cancelled_meanwhile(self, run: Execution) -> None:
        """A drive stored steps: if the run was cancelled meanwhile (here or in another process),
        cancel them as :meth:`cancel_steps` did the ones stored before."""
        state = (await self.store.execution_states(run.tenant, [run.id])).get(run.id)
        if state is not None and state.status is ExecutionStatus.CANCELLED:
            await self.cancel_steps(run)

    async def steps(self, tenant: str, run_id: str) -> list[StepRun]:
        return await self.store.workflow_steps(tenant, run_id)


def _check_run(run: Execution) -> None:
    if run.handler_type != HANDLER_TYPE:
        raise FailedPrecondition(
            f"execution {run.id!r} is not a workflow run (handler type {run.handler_type!r})",
            reason="NOT_A_WORKFLOW",
        )
    if run.status.is_final:
        raise FailedPrecondition(f"execution {run.id!r} is {run.status.value}", reason="EXECUTION_FINISHED")


def _wait_id(row: StepRun) -> str:
    return f"{row.run_id}/{row.step}/{row.index}"


__all__ = ["CONFIG_SCHEMA", "HANDLER_TYPE", "WorkflowRunner", "Workflows"]
