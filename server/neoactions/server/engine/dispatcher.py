"""Runs executions: one attempt at a time, through the handler type's runner.

Embedded scheduling: a priority queue in this process over executions already
stored. Every state change is written to the store *before* it is announced on
the update bus, so a crash at any point leaves the store telling the truth and
start-up resumes whatever was not final. Retries are stored as ``scheduled``
with ``next_attempt_at``; a timer here picks them up, and a restart would too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from neoactions.server.bus import UpdateBus
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.model import (
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    ExecutionUpdate,
    HandlerSpec,
    JSONObject,
    RetryPolicy,
    UpdateKind,
    utcnow,
)
from neoactions.server.retry import retry_delay_ms
from neoactions.server.runners import ExecutionContext, Failure, HandlerRegistry, Log, Progress, Result
from neoactions.server.store import Store
from neoactions.server.templating import ConfigRenderer, TemplateRenderError

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
_FINAL_KIND = {
    ExecutionStatus.SUCCEEDED: UpdateKind.SUCCEEDED,
    ExecutionStatus.FAILED: UpdateKind.FAILED,
    ExecutionStatus.TIMED_OUT: UpdateKind.TIMED_OUT,
    ExecutionStatus.CANCELLED: UpdateKind.CANCELLED,
    ExecutionStatus.DEAD_LETTERED: UpdateKind.DEAD_LETTERED,
}


@dataclass(slots=True)
class Job:
    """An execution on its way to a runner, with what the pipeline already has in memory."""

    execution: Execution
    #: the event envelope templates see; loaded from the store when missing
    envelope: JSONObject | None = None
    done: asyncio.Future[Execution] | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Plan:
    handler: HandlerSpec
    timeout_seconds: float
    retry: RetryPolicy


class Dispatcher:
    """A bounded pool of workers draining a priority queue of jobs."""

    def __init__(
        self,
        store: Store,
        catalog: ActionCatalog,
        registry: HandlerRegistry,
        bus: UpdateBus,
        renderer: ConfigRenderer,
        concurrency: int = 64,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._registry = registry
        self._bus = bus
        self._renderer = renderer
        self._concurrency = concurrency
        self._queue: asyncio.PriorityQueue[tuple[int, int, Job]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"dispatcher-{i}") for i in range(self._concurrency)]

    async def drain(self, grace_seconds: float) -> None:
        """Stop taking timers, let queued and running work finish for a grace period, then cancel.

        Whatever is cut stays unfinished in the store and is resumed at the next start.
        """
        self._accepting = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        try:
            async with asyncio.timeout(grace_seconds):
                while self._in_flight or not self._queue.empty():
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            log.warning(
                "shutdown grace period over: %d executions left to resume", self._in_flight + self._queue.qsize()
            )
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    def submit(self, job: Job) -> None:
        ex = job.execution
        due = ex.next_attempt_at
        if due is not None and due > utcnow():
            delay = (due - utcnow()).total_seconds()
            loop = asyncio.get_running_loop()
            timer: asyncio.TimerHandle | None = None

            def fire() -> None:
                if timer is not None:
                    self._timers.discard(timer)
                if self._accepting:
                    self._enqueue(job)

            timer = loop.call_later(delay, fire)
            self._timers.add(timer)
            return
        self._enqueue(job)

    def _enqueue(self, job: Job) -> None:
        self._idle.clear()
        self._queue.put_nowait((-int(job.execution.priority), next(self._order), job))

    async def _work(self) -> None:
        while True:
            _, _, job = await self._queue.get()
            self._in_flight += 1
            try:
                await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store failure mid-run: the execution stays unfinished in the
                # store and is resumed on the next start.
                log.exception("execution %s could not be recorded", job.execution.id)
                if job.done is not None and not job.done.done():
                    job.done.set_result(job.execution)
            finally:
                self._in_flight -= 1
                if not self._in_flight and self._queue.empty():
                    self._idle.set()

    # --- one attempt ----------------------------------------------------------------
    async def run(self, job: Job, deadline: datetime | None = None) -> Execution:
        """Run the next attempt of ``job.execution`` and record it; returns the execution."""
        ex = job.execution
        plan = await self._plan(ex)
        number = ex.attempt_count + 1
        attempt = Attempt(number=number, runner=plan.handler.type)
        await self._store.start_attempt(ex.tenant, ex.id, attempt)
        ex.attempt_count = number
        ex.status = ExecutionStatus.RUNNING
        ex.started_at = ex.started_at or attempt.started_at
        self._announce(ex, UpdateKind.STARTED, attempt=number)

        attempt_deadline = attempt.started_at + timedelta(seconds=plan.timeout_seconds)
        if deadline is not None:
            attempt_deadline = min(attempt_deadline, deadline)
        outcome = await self._attempt(job, plan, attempt, attempt_deadline)
        await self._finish(job, plan, attempt, outcome)
        return ex

    async def _attempt(self, job: Job, plan: _Plan, attempt: Attempt, deadline: datetime) -> Result | Failure:
        ex = job.execution
        try:
            handler_type = self._registry.get(plan.handler.type)
        except Exception as exc:
            return Failure.of("unknown_handler_type", str(exc))
        envelope = job.envelope if job.envelope is not None else await self._envelope(ex)
        ctx = ExecutionContext(
            tenant=ex.tenant,
            execution_id=ex.id,
            action_name=ex.action_name,
            action_version=ex.action_version,
            attempt=attempt.number,
            idempotency_key=ex.idempotency_key,
            deadline=deadline,
            correlation_id=ex.correlation_id,
            event_id=ex.event_id,
            event_type=str(envelope.get("type", "")) if envelope else "",
        )
        try:
            config = self._renderer.render(
                plan.handler.config,
                {
                    "data": ex.input,
                    "event": envelope or {},
                    "metadata": (envelope or {}).get("metadata", {}),
                    "execution": {"id": ex.id, "attempt": attempt.number, "idempotency_key": ex.idempotency_key},
                    "vars": {},
                    "secrets": {},
                },
                handler_type.raw_config_keys,
            )
        except TemplateRenderError as exc:
            return Failure.of("template_error", str(exc))
        outcome: Result | Failure | None = None
        try:
            async with asyncio.timeout(max(0.0, (deadline - utcnow()).total_seconds())):
                async for update in handler_type.runner.execute(config, ex.input, ctx):
                    if isinstance(update, Log):
                        self._announce(ex, UpdateKind.LOG, attempt=attempt.number, message=update.message)
                    elif isinstance(update, Progress):
                        self._announce(
                            ex,
                            UpdateKind.PROGRESS,
                            attempt=attempt.number,
                            message=update.message,
                            progress=update.fraction,
                        )
                    else:
                        outcome = update
        except TimeoutError:
            seconds = (deadline - attempt.started_at).total_seconds()
            return Failure(
                ExecutionError("timeout", f"attempt exceeded its timeout of {seconds:g}s", retryable=True),
                timed_out=True,
            )
        except Exception as exc:
            log.exception("runner %s broke its contract", plan.handler.type)
            return Failure.of("runner_error", f"{type(exc).__name__}: {exc}", retryable=True)
        return outcome or Failure.of("runner_error", "the runner ended without a result", retryable=True)

    async def _finish(self, job: Job, plan: _Plan, attempt: Attempt, outcome: Result | Failure) -> None:
        ex = job.execution
        attempt.finished_at = utcnow()
        next_at: datetime | None = None
        if isinstance(outcome, Result):
            attempt.status = status = ExecutionStatus.SUCCEEDED
            attempt.output = ex.output = outcome.output
            ex.error = None
        else:
            attempt.error = ex.error = outcome.error
            attempt.status = ExecutionStatus.TIMED_OUT if outcome.timed_out else ExecutionStatus.FAILED
            status = attempt.status
            delay = self._retry_delay(ex, plan.retry, attempt, outcome)
            if delay is not None:
                status = ExecutionStatus.SCHEDULED
                next_at = attempt.finished_at + timedelta(milliseconds=delay)
        await self._store.finish_attempt(ex.tenant, ex.id, attempt, status, attempt.output, attempt.error, next_at)
        ex.attempts.append(attempt)
        ex.status, ex.next_attempt_at, ex.updated_at = status, next_at, attempt.finished_at
        if status is ExecutionStatus.SCHEDULED:
            self._announce(ex, UpdateKind.ATTEMPT_FAILED, attempt=attempt.number, error=attempt.error)
            self._announce(ex, UpdateKind.RETRY_SCHEDULED, attempt=attempt.number, message=f"retry at {next_at}")
            self.submit(job)
            return
        ex.finished_at = attempt.finished_at
        self._announce(ex, _FINAL_KIND[status], attempt=attempt.number, output=ex.output, error=ex.error)
        if job.done is not None and not job.done.done():
            job.done.set_result(ex)

    def _retry_delay(self, ex: Execution, policy: RetryPolicy, attempt: Attempt, outcome: Failure) -> float | None:
        if not outcome.error.retryable:
            return None
        interrupted = sum(1 for a in ex.attempts if a.error is not None and a.error.type == INTERRUPTED)
        if attempt.number - interrupted > policy.max_retries:
            return None
        delay = retry_delay_ms(policy, attempt.number - interrupted)
        if outcome.error.retry_after_ms:
            # The target said when to come back (Retry-After); never sooner.
            delay = max(delay, float(outcome.error.retry_after_ms))
        if policy.max_age_seconds and (
            (utcnow() - ex.created_at).total_seconds() + delay / 1000.0 > policy.max_age_seconds
        ):
            return None
        return delay

    # --- helpers ------------------------------------------------------------------
    async def _plan(self, ex: Execution) -> _Plan:
        if ex.inline is not None:
            return _Plan(ex.inline.handler, ex.inline.timeout_seconds, RetryPolicy())
        action = await self._catalog.version(ex.tenant, ex.action_id, ex.action_version)
        return _Plan(action.handler, action.timeout_seconds, action.retry_policy)

    async def _envelope(self, ex: Execution) -> JSONObject | None:
        if not ex.event_id:
            return None
        event = await self._store.get_event(ex.tenant, ex.event_id)
        return event.envelope()

    def _announce(self, ex: Execution, kind: UpdateKind, **fields: Any) -> None:
        self._bus.publish(
            ExecutionUpdate(
                tenant=ex.tenant,
                kind=kind,
                execution_id=ex.id,
                action_name=ex.action_name,
                event_id=ex.event_id,
                correlation_id=ex.correlation_id,
                status=ex.status,
                **fields,
            )
        )

    # --- recovery -----------------------------------------------------------------
    async def resume(self, tenant: str) -> int:
        """Re-submit what a stopped or killed process left unfinished; returns how many."""
        unfinished = await self._store.unfinished_executions(tenant)
        for ex in unfinished:
            if ex.status is ExecutionStatus.RUNNING:
                # The attempt that was running died with its process: record it as
                # interrupted (it does not count against the retry budget) and go on.
                cut = Attempt(number=ex.attempt_count, runner=ex.handler_type)
                cut.status = ExecutionStatus.FAILED
                cut.finished_at = utcnow()
                cut.error = ExecutionError(INTERRUPTED, "the process running this attempt stopped", retryable=True)
                await self._store.finish_attempt(
                    tenant, ex.id, cut, ExecutionStatus.SCHEDULED, None, cut.error, utcnow()
                )
                for a in ex.attempts:
                    if a.number == cut.number:
                        a.error = cut.error
                        break
                else:
                    ex.attempts.append(cut)
                ex.status, ex.next_attempt_at = ExecutionStatus.SCHEDULED, None
            self.submit(Job(ex))
        return len(unfinished)


__all__ = ["Dispatcher", "Job"]
