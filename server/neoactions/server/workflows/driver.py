"""One drive of a workflow run: what one attempt of a ``workflow`` execution does.

A drive reads the run's stored step rows, records what ended since (children finished,
timers due), starts every step now ready (unless the run is paused), stores the rows, and
then ends the attempt: ``Result`` when every step is final, ``Failure`` when a step failed
and the error mode says stop, else ``Suspend`` until the earliest timer — woken sooner
when a child ends or an awaited event arrives. A drive may run again at any point (a
crash, a spurious wake): rows are written before the children they name are stored, and a
final row is never touched again, so a completed step never runs twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from neoactions.domain.errors import InvalidArgument, NeoActionsError, NotFound
from neoactions.domain.ids import new_id
from neoactions.domain.model import (
    JSON,
    Execution,
    ExecutionError,
    ExecutionMode,
    ExecutionStatus,
    InlineAction,
    JSONObject,
    Priority,
    RetryPolicy,
    UpdateKind,
    utcnow,
)
from neoactions.server.retry import retry_delay_ms
from neoactions.server.runners import ExecutionContext, Failure, Outcome, Result, Suspend
from neoactions.server.telemetry import tracing
from neoactions.server.workflows.rows import StepRun, StepStatus
from neoactions.server.workflows.spec import Step, Workflow, type_matches

if TYPE_CHECKING:
    from neoactions.server.workflows.service import Workflows

log = logging.getLogger(__name__)

#: a run with children in flight drives again at least this often, whatever woke it or not
#: (a wake lost with a crashed process is found here)
BACKSTOP_SECONDS = 30.0
#: the default retries of a step under ``retry_then_dead_letter`` when it names none
DEFAULT_STEP_RETRY = RetryPolicy(max_retries=3, initial_delay_ms=1000, max_delay_ms=60_000)
#: a step's row key for the dead-letter action a failed run starts (not a valid step name)
DEAD_LETTER_STEP = "!dead-letter"

_STEP_KIND = {
    StepStatus.RUNNING: UpdateKind.STEP_STARTED,
    StepStatus.WAITING: UpdateKind.STEP_WAITING,
    StepStatus.SUCCEEDED: UpdateKind.STEP_SUCCEEDED,
    StepStatus.TIMED_OUT: UpdateKind.STEP_SUCCEEDED,
    StepStatus.FAILED: UpdateKind.STEP_FAILED,
    StepStatus.CANCELLED: UpdateKind.STEP_FAILED,
    StepStatus.SKIPPED: UpdateKind.STEP_SKIPPED,
}


@dataclass(slots=True)
class Drive:
    """The state of one drive."""

    wf: Workflow
    data: JSON
    ctx: ExecutionContext
    run: Execution
    envelope: JSONObject | None
    rows: dict[tuple[str, int], StepRun]
    paused: bool
    now: datetime = field(default_factory=utcnow)
    changed: dict[tuple[str, int], StepRun] = field(default_factory=dict)
    children: list[Execution] = field(default_factory=list)
    #: waits to put in the matcher's index once their rows are stored
    new_waits: list[StepRun] = field(default_factory=list)

    def put(self, row: StepRun) -> None:
        self.rows[row.key] = row
        self.changed[row.key] = row

    def row(self, name: str, index: int = -1) -> StepRun | None:
        return self.rows.get((name, index))

    def variables(self) -> JSONObject:
        out: JSONObject = {name: v.default for name, v in self.wf.variables.items()}
        done = [
            r
            for r in self.rows.values()
            if r.index < 0 and r.status is StepStatus.SUCCEEDED and self._kind(r.step) == "set_variable"
        ]
        done.sort(key=lambda r: (r.finished_at or self.now, r.step))
        for r in done:
            if isinstance(r.output, dict):
                out.update(r.output)
        return out

    def _kind(self, name: str) -> str:
        return next((s.kind for s in self.wf.steps if s.name == name), "")

    def context(self, item: Any = None, index: int | None = None) -> JSONObject:
        steps: JSONObject = {}
        for s in self.wf.steps:
            r = self.row(s.name)
            status = r.status if r is not None else StepStatus.PENDING
            steps[s.name] = {
                "output": r.output if r is not None and status.is_final else None,
                "status": status.value,
                "timed_out": status is StepStatus.TIMED_OUT,
                "skipped": status is StepStatus.SKIPPED,
                "failed": status in (StepStatus.FAILED, StepStatus.CANCELLED),
                "error": r.error.to_dict() if r is not None and r.error is not None else None,
            }
        envelope = self.envelope or {}
        out: JSONObject = {
            "data": self.data,
            "event": envelope,
            "metadata": envelope.get("metadata", {}),
            "vars": self.variables(),
            "steps": steps,
            "execution": {"id": self.run.id, "idempotency_key": self.run.idempotency_key},
        }
        if index is not None:
            out["item"], out["index"] = item, index
        return out


def _finish(
    row: StepRun, status: StepStatus, now: datetime, output: JSON = None, error: ExecutionError | None = None
) -> None:
    row.status, row.finished_at, row.wake_at = status, now, None
    row.output, row.error = output, error
    row.wait = None


class Driver:
    """Drives runs; one per service (the parts it uses live on :class:`Workflows`)."""

    def __init__(self, service: Workflows) -> None:
        self._s = service

    async def drive(self, wf: Workflow, data: JSON, ctx: ExecutionContext) -> Outcome:
        s = self._s
        run = await s.store.get_execution(ctx.tenant, ctx.execution_id)
        rows = {r.key: r for r in await s.store.workflow_steps(ctx.tenant, run.id)}
        paused = await s.store.workflow_paused(ctx.tenant, run.id)
        envelope = await s.envelope(run)
        d = Drive(wf, data, ctx, run, envelope, rows, paused)
        await self._reconcile_children(d)
        await self._due_timers(d)
        progress = True
        while progress:  # steps that end at once (set_variable, skipped) may make others ready
            progress = await self._fan_out(d)
            progress = await self._start_ready(d) or progress
        outcome = await self._outcome(d)
        await self._store(d)
        return outcome

    # --- what ended ------------------------------------------------------------------
    async def _reconcile_children(self, d: Drive) -> None:
        for row in [r for r in d.rows.values() if r.status is StepStatus.RUNNING and r.child_id]:
            try:
                child = await self._s.store.get_execution(d.ctx.tenant, row.child_id)
            except NotFound:
                # the drive that recorded this row died before storing the child: store it now
                await self._start_child(d, d.wf.step(row.step), row, again=row.child_id)
                continue
            if not child.status.is_final:
                continue
            if child.status is ExecutionStatus.SUCCEEDED:
                _finish(row, StepStatus.SUCCEEDED, d.now, child.output)
                d.put(row)
                continue
            step = d.wf.step(row.step)
            policy = step.retry_policy or (DEFAULT_STEP_RETRY if d.wf.error_mode == "retry_then_dead_letter" else None)
            error = child.error or ExecutionError(child.status.value, f"the step's execution {child.status.value}")
            if (
                policy is not None
                and row.attempts <= policy.max_retries
                and child.status is not ExecutionStatus.CANCELLED
            ):
                delay = retry_delay_ms(policy, row.attempts)
                row.status, row.error, row.child_id = StepStatus.WAITING, error, ""
                row.wake_at = d.now + timedelta(milliseconds=delay)
                d.put(row)
                continue
            status = StepStatus.CANCELLED if child.status is ExecutionStatus.CANCELLED else StepStatus.FAILED
            _finish(row, status, d.now, None, error)
            d.put(row)

    async def _due_timers(self, d: Drive) -> None:
        for row in [r for r in d.rows.values() if r.status is StepStatus.WAITING]:
            if row.wake_at is None or row.wake_at > d.now:
                continue
            if row.wait is not None:  # an event wait whose timeout came first (if the event did not)
                timed_out = dataclasses.replace(row)
                _finish(timed_out, StepStatus.TIMED_OUT, d.now, None)
                if await self._s.store.settle_workflow_step(d.ctx.tenant, timed_out, StepStatus.WAITING):
                    d.rows[row.key] = timed_out
                    self._s.forget_wait(d.ctx.tenant, row)
                    self._s.announce_step(d.run, timed_out, "timed out waiting for an event")
                else:  # the event won: read what it stored
                    fresh = {r.key: r for r in await self._s.store.workflow_steps(d.ctx.tenant, d.run.id)}
                    if row.key in fresh:
                        d.rows[row.key] = fresh[row.key]
                continue
            step = d.wf.step(row.step)
            if step.runs_child:  # a retry's time came
                if d.paused:
                    continue
                await self._start_child(d, step, row)
            else:
                _finish(row, StepStatus.SUCCEEDED, d.now, {"waited_until": row.wake_at.isoformat()})
                d.put(row)

    # --- starting steps ----------------------------------------------------------------
    def _ready(self, d: Drive, step: Step) -> bool | None:
        """True: ready; False: not yet; None: never (a dependency failed: skip it)."""
        for dep in step.depends_on:
            r = d.row(dep)
            if r is None or not r.status.is_final:
                return False
            if r.status in (StepStatus.FAILED, StepStatus.CANCELLED):
                return None
        return True

    async def _start_ready(self, d: Drive) -> bool:
        progress = False
        for step in d.wf.steps:
            existing = d.row(step.name)
            if existing is not None and existing.status is not StepStatus.PENDING:
                continue
            ready = self._ready(d, step)
            if ready is False:
                continue
            row = existing or StepRun(d.run.id, step.name)
            if ready is None:
                _finish(row, StepStatus.SKIPPED, d.now, None)
                row.error = ExecutionError("dependency_failed", "a step it depends on failed")
                d.put(row)
                progress = True
                continue
            if d.paused:
                continue
            if step.condition:
                try:
                    go = self._s.condition(step).evaluate(d.context())
                except (ValueError, InvalidArgument) as exc:
                    _finish(row, StepStatus.FAILED, d.now, None, ExecutionError("condition_error", str(exc)))
                    d.put(row)
                    progress = True
                    continue
                if not go:
                    _finish(row, StepStatus.SKIPPED, d.now, None)
                    d.put(row)
                    progress = True
                    continue
            row.started_at = d.now
            await self._start(d, step, row)
            progress = progress or row.status.is_final or step.for_each is not None
        return progress

    async def _start(self, d: Drive, step: Step, row: StepRun) -> None:
        try:
            if step.kind == "set_variable":
                values = await self._render(d, step.set_variable)
                assert isinstance(values, dict)
                for name, value in values.items():
                    declared = d.wf.variables.get(name)
                    if declared is not None and declared.type and not type_matches(declared.type, value):
                        raise _StepError("variable_type", f"variable {name!r} is a {declared.type}, got {value!r}")
                _finish(row, StepStatus.SUCCEEDED, d.now, values)
            elif step.kind == "wait":
                row.status, row.wake_at = StepStatus.WAITING, d.now + timedelta(seconds=step.wait_seconds or 0.0)
            elif step.kind == "wait_until":
                when = await self._render(d, step.wait_until)
                row.status, row.wake_at = StepStatus.WAITING, _parse_time(when)
            elif step.kind == "wait_for_event":
                assert step.wait_for_event is not None
                w = step.wait_for_event
                conditions = await self._render(d, list(w.conditions))
                row.wait = {"event_types": list(w.event_types), "conditions": conditions}
                try:
                    self._s.compile_wait(row.wait)
                except InvalidArgument as exc:
                    raise _StepError("invalid_wait", exc.message) from None
                row.status = StepStatus.WAITING
                row.wake_at = None if w.timeout_seconds is None else d.now + timedelta(seconds=w.timeout_seconds)
                d.new_waits.append(row)
            elif step.for_each is not None:
                items = await self._render(d, step.for_each)
                if not isinstance(items, list):
                    raise _StepError("for_each_not_array", f"for_each gave {type(items).__name__}, not an array")
                row.status, row.output = StepStatus.RUNNING, {"items": len(items)}
                for i, item in enumerate(items):
                    d.put(StepRun(d.run.id, step.name, i, output={"item": item}))
                if not items:
                    _finish(row, StepStatus.SUCCEEDED, d.now, [])
            else:
                await self._start_child(d, step, row)
                return
        except _StepError as exc:
            _finish(row, StepStatus.FAILED, d.now, None, ExecutionError(exc.type, exc.message))
        d.put(row)

    async def _fan_out(self, d: Drive) -> bool:
        """Advance every running ``for_each``: start items up to ``max_parallel``, end it when all ended."""
        progress = False
        for parent in [r for r in d.rows.values() if r.index < 0 and r.status is StepStatus.RUNNING]:
            step = d.wf.step(parent.step)
            if step.for_each is None:
                continue
            items = sorted((r for r in d.rows.values() if r.step == step.name and r.index >= 0), key=lambda r: r.index)
            failed = [r for r in items if r.status in (StepStatus.FAILED, StepStatus.CANCELLED)]
            if all(r.status.is_final for r in items):
                if failed:
                    first = failed[0]
                    error = ExecutionError(
                        "item_failed", f"item {first.index} failed: {first.error.message if first.error else ''}"
                    )
                    _finish(parent, StepStatus.FAILED, d.now, [r.output for r in items], error)
                else:
                    _finish(parent, StepStatus.SUCCEEDED, d.now, [r.output for r in items])
                d.put(parent)
                progress = True
                continue
            if failed and d.wf.error_mode != "continue":
                # an item failed: start no more; the step fails once those in flight end
                for item in items:
                    if item.status is StepStatus.PENDING:
                        _finish(item, StepStatus.SKIPPED, d.now, None)
                        d.put(item)
                        progress = True
                continue
            if d.paused:
                continue
            in_flight = sum(1 for r in items if r.status in (StepStatus.RUNNING, StepStatus.WAITING))
            for item in items:
                if in_flight >= step.max_parallel:
                    break
                if item.status is StepStatus.PENDING:
                    item.started_at = d.now
                    await self._start_child(d, step, item)
                    in_flight += 1
        return progress

    async def _start_child(self, d: Drive, step: Step, row: StepRun, again: str = "") -> None:
        """Record the row running with a new child's id (or store the child ``again`` names,
        lost with the drive that recorded it); the child is stored after the rows."""
        if row.index >= 0:
            item = row.output.get("item") if isinstance(row.output, dict) else None
            context = d.context(item, row.index)
            default_input: JSON = item
        else:
            context, default_input = d.context(), d.data
        try:
            child_input = (
                default_input if step.input_mapping is None else await self._s.render(step.input_mapping, context)
            )
            child = await self._child(d, step, row, child_input)
        except _StepError as exc:
            _finish(row, StepStatus.FAILED, d.now, None, ExecutionError(exc.type, exc.message))
            d.put(row)
            return
        if again:
            child.id = again
            d.children.append(child)
            return
        row.status, row.child_id, row.wake_at = StepStatus.RUNNING, child.id, None
        row.attempts += 1
        if row.index >= 0:  # keep the item for a retry
            row.output = {"item": row.output.get("item") if isinstance(row.output, dict) else None}
        d.put(row)
        d.children.append(child)

    async def _child(self, d: Drive, step: Step, row: StepRun, child_input: JSON) -> Execution:
        run = d.run
        key = f"{run.id}/{step.name}" + (f"/{row.index}" if row.index >= 0 else "")
        ex = Execution(
            id=new_id(),
            tenant=run.tenant,
            action_id="",
            action_name="",
            action_version=0,
            input=child_input,
            event_id=run.event_id,
            idempotency_key=key,
            correlation_id=run.correlation_id,
            causation_id=run.id,
            parent_execution_id=run.id,
            priority=run.priority if isinstance(run.priority, Priority) else Priority.NORMAL,
            mode=ExecutionMode.ASYNC,
            # a step's attempts are children of the workflow's attempt that started it (traced)
            trace_context=tracing.current_traceparent() or run.trace_context,
        )
        if step.kind == "action":
            try:
                action = await self._s.action(run.tenant, step.action)
            except NotFound:
                raise _StepError("action_not_found", f"action {step.action!r} does not exist") from None
            ex.action_id, ex.action_name, ex.action_version = action.id, action.name, action.version
            ex.handler_type, ex.priority = action.handler.type, action.priority
        else:
            assert step.handler is not None
            ex.inline = InlineAction(step.handler, step.timeout_seconds or 30.0)
            ex.handler_type = step.handler.type
            ex.action_name = run.action_name
        return ex

    async def _render(self, d: Drive, template: JSON) -> JSON:
        try:
            return await self._s.render(template, d.context())
        except _StepError:
            raise
        except Exception as exc:
            raise _StepError("template_error", str(exc)) from None

    # --- the outcome -------------------------------------------------------------------
    async def _outcome(self, d: Drive) -> Outcome:
        top = {s.name: d.row(s.name) for s in d.wf.steps}
        failed = [r for r in top.values() if r is not None and r.status in (StepStatus.FAILED, StepStatus.CANCELLED)]
        if failed and d.wf.error_mode != "continue":
            first = failed[0]
            await self._s.cancel_children(d.run, [r for r in d.rows.values() if r.status is StepStatus.RUNNING])
            for r in d.rows.values():
                if r.wait is not None and r.status is StepStatus.WAITING:
                    self._s.forget_wait(d.ctx.tenant, r)
                if not r.status.is_final:
                    _finish(r, StepStatus.CANCELLED, d.now, None, ExecutionError("cancelled", "the workflow failed"))
                    d.put(r)
            dead_letter = d.wf.error_mode == "retry_then_dead_letter"
            if dead_letter and d.wf.dead_letter_action:
                await self._dead_letter(d, first)
            message = first.error.message if first.error is not None else first.status.value
            # retry_then_dead_letter: the steps spent their retries, so the run ends dead-lettered
            error = ExecutionError("workflow_step_failed", f"step {first.step!r} failed: {message}")
            return Failure(error, dead_letter=dead_letter)
        if all(r is not None and r.status.is_final for r in top.values()):
            try:
                output = await self._output(d)
            except _StepError as exc:
                return Failure(ExecutionError(exc.type, f"output: {exc.message}"))
            return Result(output)
        timers = [r.wake_at for r in d.rows.values() if r.status is StepStatus.WAITING and r.wake_at is not None]
        if d.paused:  # a retry due while paused waits for the resume (which wakes the run)
            timers = [t for t in timers if t > d.now]
        if any(r.status is StepStatus.RUNNING for r in d.rows.values()) or d.children:
            timers.append(d.now + timedelta(seconds=BACKSTOP_SECONDS))
        until = min(timers) if timers else None
        return Suspend(until=until, state=None, reason=_waiting_for(d))

    async def _dead_letter(self, d: Drive, failed: StepRun) -> None:
        row = d.row(DEAD_LETTER_STEP) or StepRun(d.run.id, DEAD_LETTER_STEP)
        if row.child_id:
            return
        try:
            action = await self._s.action(d.run.tenant, d.wf.dead_letter_action)
        except NotFound:
            log.warning("workflow %s: dead-letter action %r does not exist", d.run.id, d.wf.dead_letter_action)
            return
        error = failed.error.to_dict() if failed.error is not None else None
        child = Execution(
            id=new_id(), tenant=d.run.tenant, action_id=action.id, action_name=action.name,
            action_version=action.version, handler_type=action.handler.type,
            input={"execution_id": d.run.id, "action": d.run.action_name, "step": failed.step, "error": error,
                   "data": d.data},
            event_id=d.run.event_id, idempotency_key=f"{d.run.id}/{DEAD_LETTER_STEP}",
            correlation_id=d.run.correlation_id, causation_id=d.run.id, mode=ExecutionMode.ASYNC,
            trace_context=tracing.current_traceparent() or d.run.trace_context,
        )  # fmt: skip
        row.status, row.child_id, row.started_at, row.attempts = StepStatus.SUCCEEDED, child.id, d.now, 1
        row.finished_at, row.output = d.now, {"execution_id": child.id}
        d.put(row)
        d.children.append(child)

    async def _output(self, d: Drive) -> JSON:
        if d.wf.output is not None:
            return await self._render(d, d.wf.output)
        return {
            "steps": {s.name: (r.output if (r := d.row(s.name)) is not None else None) for s in d.wf.steps},
            "vars": d.variables(),
        }

    async def _store(self, d: Drive) -> None:
        # shielded: a cancel stopping this attempt must not cut it between rows and children
        await asyncio.shield(self._s.finish_writing(self._write(d)))

    async def _write(self, d: Drive) -> None:
        """Rows first (they name the children), then the children, then the waits' index entries;
        then, if the run was cancelled meanwhile — its cancel may have read the steps before
        these rows — what was just stored is cancelled too."""
        s = self._s
        await s.store.save_workflow_steps(d.ctx.tenant, list(d.changed.values()))
        for row in d.new_waits:
            s.remember_wait(d.ctx.tenant, row)
        if d.new_waits:
            await s.waits_stored(d.ctx.tenant, d.run.id)
        if d.children:
            await s.start_children(d.run, d.children)
        for row in d.changed.values():
            s.announce_step(d.run, row)
        if d.changed or d.children:
            await s.cancelled_meanwhile(d.run)


class _StepError(Exception):
    def __init__(self, type: str, message: str) -> None:
        super().__init__(message)
        self.type, self.message = type, message


def _parse_time(value: JSON) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _StepError("invalid_date", f"wait_until gave {value!r}, not an ISO 8601 date") from None
    else:
        raise _StepError("invalid_date", f"wait_until gave {type(value).__name__}, not an ISO 8601 date")
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return when


def _waiting_for(d: Drive) -> str:
    parts: list[str] = []
    if d.paused:
        parts.append("paused")
    running = [r.label for r in d.rows.values() if r.status is StepStatus.RUNNING and r.child_id]
    waiting = [r.label for r in d.rows.values() if r.status is StepStatus.WAITING]
    if running:
        parts.append("steps running: " + ", ".join(_few(running)))
    if waiting:
        parts.append("steps waiting: " + ", ".join(_few(waiting)))
    return "; ".join(parts) or "workflow"


def _few(names: Iterable[str], n: int = 5) -> list[str]:
    names = list(names)
    return names[:n] + ([f"+{len(names) - n}"] if len(names) > n else [])


STEP_UPDATE_KINDS = _STEP_KIND

__all__ = ["BACKSTOP_SECONDS", "DEAD_LETTER_STEP", "STEP_UPDATE_KINDS", "Driver", "NeoActionsError"]
