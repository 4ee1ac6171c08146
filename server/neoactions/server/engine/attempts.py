"""One attempt of one execution: plan → start (stored) → runner → finish (stored) → announce.

The outcome decides what the execution becomes (the retry policy of SPEC §5):

- success → ``succeeded``;
- a non-retryable error → ``failed`` (``timed_out`` for a timeout) at once;
- a retryable error with retries left (``max_retries`` of the current attempt series, not
  counting interrupted attempts, and ``max_age`` not exceeded) → ``scheduled`` at
  ``finished + delay`` (the seed formula, never sooner than a target's ``retry_after_ms``);
- a retryable error with the policy's retries used up → ``dead_lettered`` when the action
  has a retry policy (``max_retries > 0``), else ``failed``/``timed_out``: an action that
  never asked for retries has exhausted nothing;
- a failure marked ``dead_letter`` (a runner that spent retries of its own: a workflow in
  ``retry_then_dead_letter`` mode) → ``dead_lettered`` at once.

Whatever escapes the config's rendering or a runner's own code is an outcome too, never
an exception out of the attempt (which would leave the execution running, to be resumed
and break again, forever): a template's failure is a non-retryable ``template_error``; an
exception out of a runner a ``runner_error``, retryable only when clearly transient
(:func:`neoactions.server.retry.classify_exception`). Both count as attempts.

Before an attempt starts, flow control (``neoactions.server.flow``) must admit it:
``max_concurrency`` across all workers, rate limits per action and tenant, and the
circuit breaker of the attempt's target. A refusal returns :class:`Deferred` — the
execution is re-scheduled, no attempt is spent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from neoactions.domain.errors import NeoActionsError, Unavailable
from neoactions.domain.model import (
    JSON,
    Action,
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    ExecutionUpdate,
    JSONObject,
    RateLimit,
    RetryPolicy,
    UpdateKind,
    utcnow,
)
from neoactions.server import telemetry
from neoactions.server.bus import UpdateBus
from neoactions.server.engine.catalog import ActionCatalog
from neoactions.server.engine.envelopes import EnvelopeLoader
from neoactions.server.engine.jobs import Begun, Deferred, Job, Plan, Prepared
from neoactions.server.engine.leases import LeaseKeeper
from neoactions.server.engine.recorder import AttemptRecorder
from neoactions.server.engine.storable import storable
from neoactions.server.flow import AdmissionRequest, FlowControl, Lease, Refused, breaker_target
from neoactions.server.retry import MAX_RETRY_DELAY_MS, classify_exception, retry_delay_ms
from neoactions.server.runners import (
    ExecutionContext,
    Failure,
    HandlerRegistry,
    Log,
    Outcome,
    Progress,
    Result,
    Suspend,
)
from neoactions.server.secrets import NO_MASK, Masker, Secrets, SecretUnavailable, attempt_secret_names
from neoactions.server.store import AttemptFinish, AttemptStart, Store
from neoactions.server.templating import ConfigRenderer, TemplateRenderBusy, TemplateRenderError

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
FINAL_KIND = {
    ExecutionStatus.SUCCEEDED: UpdateKind.SUCCEEDED,
    ExecutionStatus.FAILED: UpdateKind.FAILED,
    ExecutionStatus.TIMED_OUT: UpdateKind.TIMED_OUT,
    ExecutionStatus.CANCELLED: UpdateKind.CANCELLED,
    ExecutionStatus.DEAD_LETTERED: UpdateKind.DEAD_LETTERED,
}


#: leases of flow control outlive the attempt's timeout by this much
_FLOW_MARGIN_SECONDS = 5.0
#: when the flow-control backend is unreachable, try again this much later
_FLOW_UNAVAILABLE_RETRY = 1.0


#: releases finishing after their attempt's task was cancelled
_background: set[asyncio.Future[None]] = set()


#: W3C trace context (``traceparent`` is 55 characters; ``tracestate`` at most 32 members)
_TRACE_KEYS = {"traceparent": 55, "tracestate": 512}


def _trace_context(envelope: JSONObject | None) -> dict[str, str]:
    """The W3C trace context the publisher put in the event's metadata (the CloudEvents
    distributed-tracing extension), for runners to pass on (HTTP headers, gRPC metadata)."""
    metadata = (envelope or {}).get("metadata")
    if not isinstance(metadata, dict):
        return {}
    return {
        key: value
        for key, limit in _TRACE_KEYS.items()
        if isinstance(value := metadata.get(key), str) and 0 < len(value) <= limit and value.isprintable()
    }


def retry_decision(ex: Execution, policy: RetryPolicy, attempt: Attempt, error: ExecutionError) -> float | None:
    """The delay (ms) before the next attempt, or ``None`` when there is none."""
    if not error.retryable:
        return None
    # interrupted and suspended attempts failed at nothing: they spend none of the budget
    spared = sum(
        1
        for a in ex.attempts
        if a.number > ex.attempt_base
        and (a.status is ExecutionStatus.WAITING or (a.error is not None and a.error.type == INTERRUPTED))
    )
    number = attempt.number - ex.attempt_base - spared
    if number > policy.max_retries:
        return None
    delay = retry_delay_ms(policy, number)
    if error.retry_after_ms:
        # The target said when to come back (Retry-After); never sooner.
        delay = min(max(delay, float(error.retry_after_ms)), MAX_RETRY_DELAY_MS)
    if policy.max_age_seconds:
        age = (utcnow() - ex.series_start).total_seconds() + delay / 1000.0
        if age > policy.max_age_seconds:
            return None
    return delay


def _masked(outcome: Outcome, masker: Masker) -> Outcome:
    """``outcome`` with the values of the attempt's secrets masked (``***``)."""
    if not masker:
        return outcome
    if isinstance(outcome, Result):
        return Result(masker.json(outcome.output))
    if isinstance(outcome, Suspend):
        return dataclasses.replace(outcome, state=masker.json(outcome.state), reason=masker.text(outcome.reason))
    return dataclasses.replace(outcome, error=_masked_error(outcome.error, masker))


def _masked_error(e: ExecutionError, masker: Masker) -> ExecutionError:
    return dataclasses.replace(e, type=masker.text(e.type), message=masker.text(e.message), stack=masker.text(e.stack))


def _resume_state(ex: Execution) -> JSON:
    """What the last suspended attempt of the current series handed over (``None`` when none
    suspended): every attempt after it — the one resuming, and its retries — starts from it."""
    for a in reversed(ex.attempts):
        if a.number <= ex.attempt_base:
            break
        if a.status is ExecutionStatus.WAITING:
            return a.output
    return None


class AttemptRunner:
    def __init__(
        self,
        store: Store,
        catalog: ActionCatalog,
        registry: HandlerRegistry,
        bus: UpdateBus,
        renderer: ConfigRenderer,
        leases: LeaseKeeper,
        recorder: AttemptRecorder,
        flow: FlowControl | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        self._recorder = recorder
        self._secrets = secrets
        self._envelopes = EnvelopeLoader(store)
        self._flow = flow
        self._store = store
        self._catalog = catalog
        self._registry = registry
        self._bus = bus
        self._renderer = renderer
        self._leases = leases

    async def drain(self) -> None:
        """Wait until every recorded start and finish is written (shutdown)."""
        await self._recorder.drain()

    async def begin(self, job: Job) -> Begun | Deferred:
        """Plan the next attempt of ``job.execution`` and have flow control admit it: all that
        comes before its start is stored. :class:`Deferred` when flow control said not now."""
        ex = job.execution
        plan, action = await self._plan(ex)
        number = ex.attempt_count + 1
        prepared = await self._prepare(job, plan, number)
        flow_lease: Lease | None = None
        if isinstance(prepared, Prepared) and self._flow is not None:
            admission = await self._admit(ex, plan, action, breaker_target(plan.handler.type, prepared.config))
            if isinstance(admission, Deferred):
                return admission
            flow_lease = admission
        return Begun(plan, prepared, flow_lease, Attempt(number=number, runner=plan.handler.type))

    async def abandon(self, begun: Begun) -> None:
        """Give back what :meth:`begin` took when the attempt will not run after all."""
        if begun.flow_lease is not None:
            lease, begun.flow_lease = begun.flow_lease, None
            await self._release_surely(lease)

    async def run(self, job: Job, deadline: datetime | None = None) -> ExecutionStatus | Deferred:
        """Run the next attempt of ``job.execution`` (begun already when ``job.begun`` is set)
        and record it; returns the new status, or :class:`Deferred` when flow control did not
        admit the attempt (nothing recorded)."""
        ex = job.execution
        job.settling = False
        begun = job.begun or await self.begin(job)
        job.begun = None
        if isinstance(begun, Deferred):
            return begun
        plan, prepared, attempt = begun.plan, begun.prepared, begun.attempt
        flow_lease, begun.flow_lease = begun.flow_lease, None
        resume_state = _resume_state(ex)
        span = telemetry.attempt_began(ex, attempt)
        try:
            if not begun.stored:
                start = AttemptStart(ex.id, attempt, self._leases.owner, ex.handler_version)
                await self._recorder.record(ex.tenant, start)
            ex.attempt_count = attempt.number
            ex.status = ExecutionStatus.RUNNING
            ex.started_at = ex.started_at or attempt.started_at
            self.announce(ex, UpdateKind.STARTED, attempt=attempt.number)

            attempt_deadline = attempt.started_at + timedelta(seconds=plan.timeout_seconds)
            if deadline is not None:
                attempt_deadline = min(attempt_deadline, deadline)
            if isinstance(prepared, Prepared):
                outcome = _masked(
                    await self._attempt(job, prepared, attempt, attempt_deadline, resume_state, span), prepared.masker
                )
                if flow_lease is not None:
                    lease, flow_lease = flow_lease, None
                    await self._finish_flow(lease, outcome)
            else:
                outcome = prepared
            return await self._finish(job, plan, attempt, outcome)
        finally:
            telemetry.attempt_ended(span, ex, attempt)
            if flow_lease is not None:
                await self._release_surely(flow_lease)

    async def _admit(self, ex: Execution, plan: Plan, action: Action | None, target: str) -> Lease | Deferred:
        assert self._flow is not None
        request = AdmissionRequest(
            tenant=ex.tenant,
            action_name=ex.action_name,
            execution_id=ex.id,
            max_concurrency=action.max_concurrency if action is not None else 0,
            rate_limit=action.rate_limit if action is not None else RateLimit(),
            priority=ex.priority,
            target=target,
            lease_seconds=plan.timeout_seconds + _FLOW_MARGIN_SECONDS,
        )
        try:
            admission = await self._flow.admit(request)
        except Unavailable as exc:
            log.warning("flow control unavailable, delaying execution %s: %s", ex.id, exc)
            return Deferred(_FLOW_UNAVAILABLE_RETRY, "flow_control_unavailable")
        if isinstance(admission, Refused):
            return Deferred(admission.retry_after_seconds, admission.reason.value)
        return admission.lease

    async def _finish_flow(self, lease: Lease, outcome: Outcome) -> None:
        """Feed the target's breaker (only failures saying the target is unwell count) and give
        the lease back, in one call; if cancelled meanwhile, the release still happens."""
        assert self._flow is not None
        healthy = not isinstance(outcome, Failure) or not outcome.error.retryable
        try:
            await self._flow.finish(lease, healthy)
        except Unavailable as exc:
            log.warning("could not record an outcome for breaker %s: %s", lease.target, exc)
            await self._release_surely(lease)
        except asyncio.CancelledError:
            await self._release_surely(lease)
            raise

    async def _release_surely(self, lease: Lease) -> None:
        """Release ``lease``; if this task is cancelled meanwhile, the release goes on in a
        task of its own (not one task per attempt: most releases never wait, the Redis one
        rides a pipeline)."""
        try:
            await self._release(lease)
        except asyncio.CancelledError:
            release = asyncio.ensure_future(self._release(lease))
            _background.add(release)
            release.add_done_callback(_background.discard)
            raise

    async def _release(self, lease: Lease) -> None:
        assert self._flow is not None
        try:
            await self._flow.release(lease)
        except Unavailable as exc:
            log.warning("could not release a flow-control lease (it expires by itself): %s", exc)

    async def _prepare(self, job: Job, plan: Plan, number: int) -> Prepared | Failure:
        """The handler type and the rendered config, or the failure that stops the attempt early."""
        ex = job.execution
        try:
            # resolved once, at the first attempt; every later attempt keeps that version
            handler_type = self._registry.get(plan.handler.type, version=ex.handler_version or plan.handler.version)
        except Exception as exc:
            return Failure.of("unknown_handler_type", str(exc))
        ex.handler_version = handler_type.version
        envelope = job.envelope if job.envelope is not None else await self._envelope(ex)
        secrets: dict[str, str] = {}
        masker = NO_MASK
        if self._secrets is not None:
            try:
                names = attempt_secret_names(plan.handler.config, handler_type.raw_config_keys)
                secrets, masker = await self._secrets.opened(ex.tenant, names)
            except SecretUnavailable as exc:
                return Failure.of("secret_error", str(exc))
            except NeoActionsError as exc:
                return Failure.of("secret_error", exc.message, retryable=isinstance(exc, Unavailable))
        try:
            config = await self._renderer.render_async(
                plan.handler.config,
                {
                    "data": ex.input,
                    "event": envelope or {},
                    "metadata": (envelope or {}).get("metadata", {}),
                    "execution": {"id": ex.id, "attempt": number, "idempotency_key": ex.idempotency_key},
                    "vars": {},
                    "secrets": secrets,
                },
                handler_type.raw_config_keys,
                plan.timeout_seconds,
            )
        except TemplateRenderBusy as exc:
            return Failure.of("template_error", masker.text(str(exc)), retryable=True)
        except TemplateRenderError as exc:
            return Failure.of("template_error", masker.text(str(exc)))
        except Exception as exc:  # the renderer's own bug: this attempt fails, the worker goes on
            log.exception("rendering the config of execution %s failed", ex.id)
            error = classify_exception(exc, "template_error")
            return Failure(_masked_error(error, masker))
        return Prepared(handler_type, config, envelope, masker)

    async def _attempt(
        self,
        job: Job,
        prepared: Prepared,
        attempt: Attempt,
        deadline: datetime,
        resume_state: JSON = None,
        span: telemetry.Span | None = None,
    ) -> Outcome:
        ex = job.execution
        handler_type, config, envelope = prepared.handler_type, prepared.config, prepared.envelope
        mask = prepared.masker
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
            trace_context=telemetry.runner_context(span, _trace_context(envelope)),
            resume_state=resume_state,
        )
        outcome: Outcome | None = None
        try:
            async with asyncio.timeout(max(0.0, (deadline - utcnow()).total_seconds())):
                async for update in handler_type.runner.execute(config, ex.input, ctx):
                    if isinstance(update, Log):
                        self.announce(ex, UpdateKind.LOG, attempt=attempt.number, message=mask.text(update.message))
                    elif isinstance(update, Progress):
                        self.announce(
                            ex, UpdateKind.PROGRESS, attempt=attempt.number, message=mask.text(update.message),
                            progress=update.fraction,
                        )  # fmt: skip
                    else:
                        outcome = update
        except TimeoutError:
            seconds = (deadline - attempt.started_at).total_seconds()
            return Failure(
                ExecutionError("timeout", f"attempt exceeded its timeout of {seconds:g}s", retryable=True),
                timed_out=True,
            )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a runner's bug (even SystemExit) ends its attempt, never the worker
            log.exception("runner %s broke its contract", attempt.runner)
            return Failure(classify_exception(exc, "runner_error"))
        return outcome or Failure.of("runner_error", "the runner ended without a result")

    async def _finish(self, job: Job, plan: Plan, attempt: Attempt, outcome: Outcome) -> ExecutionStatus:
        ex = job.execution
        outcome = storable(outcome)  # else it fails the group commit of every attempt with it
        attempt.finished_at = utcnow()
        next_at: datetime | None = None
        keep_lease = job.keep_lease
        if isinstance(outcome, Suspend):
            # the execution waits holding nothing: no worker, no lease; whichever process
            # claims it when it is due (or woken) runs the attempt that resumes it
            attempt.status = status = ExecutionStatus.WAITING
            attempt.output = ex.output = outcome.state
            next_at, keep_lease = outcome.until, False
        elif isinstance(outcome, Result):
            attempt.status = status = ExecutionStatus.SUCCEEDED
            attempt.output = ex.output = outcome.output
            ex.error = None
        else:
            attempt.error = ex.error = outcome.error
            attempt.status = ExecutionStatus.TIMED_OUT if outcome.timed_out else ExecutionStatus.FAILED
            status = attempt.status
            delay = None if outcome.dead_letter else retry_decision(ex, plan.retry, attempt, outcome.error)
            if outcome.dead_letter:
                status = ExecutionStatus.DEAD_LETTERED
            elif delay is not None:
                status = ExecutionStatus.SCHEDULED
                next_at = attempt.finished_at + timedelta(milliseconds=delay)
            elif outcome.error.retryable and plan.retry.max_retries > 0:
                status = ExecutionStatus.DEAD_LETTERED
        finish = AttemptFinish(
            ex.id, attempt, status, attempt.output, attempt.error, next_at, self._leases.owner, keep_lease
        )
        # the write gives the lease up (unless kept for the next attempt): from here on the
        # heartbeat must not call it lost and stop the job before its outcome is announced
        job.settling = True
        await self._recorder.record(ex.tenant, finish)
        ex.attempts.append(attempt)
        ex.status, ex.next_attempt_at, ex.updated_at = status, next_at, attempt.finished_at
        if status is ExecutionStatus.WAITING:
            assert isinstance(outcome, Suspend)
            until = f"until {next_at.isoformat()}" if next_at is not None else "until woken"
            why = f"{outcome.reason}: " if outcome.reason else ""
            self.announce(ex, UpdateKind.SUSPENDED, attempt=attempt.number, message=f"{why}waiting {until}")
            return status
        if status is ExecutionStatus.SCHEDULED:
            self.announce(ex, UpdateKind.ATTEMPT_FAILED, attempt=attempt.number, error=attempt.error)
            self.announce(ex, UpdateKind.RETRY_SCHEDULED, attempt=attempt.number, message=f"retry at {next_at}")
            return status
        ex.finished_at = attempt.finished_at
        self.announce(ex, FINAL_KIND[status], attempt=attempt.number, output=ex.output, error=ex.error)
        return status

    async def _plan(self, ex: Execution) -> tuple[Plan, Action | None]:
        if ex.inline is not None:
            return Plan(ex.inline.handler, ex.inline.timeout_seconds, RetryPolicy()), None
        action = await self._catalog.version(ex.tenant, ex.action_id, ex.action_version)
        return Plan(action.handler, action.timeout_seconds, action.retry_policy), action

    async def _envelope(self, ex: Execution) -> JSONObject | None:
        if not ex.event_id:
            return None
        return await self._envelopes.load(ex.tenant, ex.event_id)

    def announce(self, ex: Execution, kind: UpdateKind, **fields: Any) -> None:
        self._bus.publish(ExecutionUpdate.about(ex, kind, **fields))


__all__ = ["FINAL_KIND", "INTERRUPTED", "AttemptRunner", "retry_decision"]
