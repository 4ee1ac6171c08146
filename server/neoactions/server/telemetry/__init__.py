"""Observability: traces, metrics, action stats and health, alerts published as events.

The engine calls the hooks below at a few points of the pipeline (publish, match, each
attempt); each returns at once when neither tracing nor metrics is on.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span

from neoactions.server import logjson
from neoactions.server.telemetry import metrics, tracing

log = logging.getLogger(__name__)

#: the token of the attempt span made current by :func:`attempt_began` (to detach it after)
_CURRENT: contextvars.ContextVar[contextvars.Token[otel_context.Context] | None] = contextvars.ContextVar(
    "neoactions_attempt_span", default=None
)

if TYPE_CHECKING:
    from neoactions.domain.model import Attempt, Event, Execution
    from neoactions.server.engine.publisher import Published, Publisher


def observing() -> bool:
    """Whether any hook has work to do (tracing or metrics on)."""
    return tracing.state.enabled or metrics.state.enabled


async def publish(publisher: Publisher, tenant: str, events: list[Event], wait: bool) -> list[Published]:
    """``publisher.publish``, inside a publish span and counted."""
    if not tracing.state.enabled:
        published = await publisher.publish(tenant, events, wait)
    else:
        with tracing.publishing(tenant, events):
            published = await publisher.publish(tenant, events, wait)
    if metrics.state.enabled:
        metrics.published(tenant, sum(1 for p in published if not p.duplicate))
    return published


def clock() -> int:
    """When matching began (``0`` when nothing observes it: the hook then does nothing)."""
    return time.time_ns() if tracing.state.enabled or metrics.state.enabled else 0


def matched(tenant: str, event: Event, executions: Sequence[Execution], started_ns: int) -> None:
    """One event was matched (from ``started_ns``) and its executions planned."""
    if not started_ns:
        return
    if metrics.state.enabled:
        metrics.matching(tenant, (time.time_ns() - started_ns) / 1e9)
    if tracing.state.enabled:
        tracing.matched(event, executions, started_ns)


def attempt_began(ex: Execution, attempt: Attempt) -> Span | None:
    """The attempt's span (``None`` when tracing is off), current in this task until
    :func:`attempt_ended` (log lines and what the attempt creates, workflow steps, see it);
    this task's log lines name the execution."""
    logjson.bind(tenant=ex.tenant, execution_id=ex.id, correlation_id=ex.correlation_id)
    if not tracing.state.enabled:
        return None
    span = tracing.start_attempt(ex, attempt)
    _CURRENT.set(otel_context.attach(otel_trace.set_span_in_context(span)))
    return span


def runner_context(span: Span | None, given: dict[str, str]) -> dict[str, str]:
    """The trace context a runner passes on: the attempt's span when traced, else what the
    event carried."""
    return tracing.headers_of(span) if span is not None else given


def attempt_ended(span: Span | None, ex: Execution, attempt: Attempt) -> None:
    """The attempt is over (recorded, or cut short when ``attempt.finished_at`` is unset)."""
    finished = attempt.finished_at is not None
    if logjson.PAYLOADS[0] and finished:
        log.debug("attempt %d ended %s: input %r, output %r", attempt.number, ex.status.value, ex.input, attempt.output)
    logjson.bind()
    token = _CURRENT.get()
    if token is not None:
        _CURRENT.set(None)
        otel_context.detach(token)
    if metrics.state.enabled and finished:
        metrics.attempt_started(ex, attempt)
        metrics.attempt_finished(ex, attempt, ex.status.value, ex.status.is_final)
    if span is not None:
        if finished:
            error = attempt.error.type if attempt.error is not None else ""
            tracing.end_attempt(span, ex.status.value, error)
        else:
            tracing.end_attempt(span, "interrupted", "interrupted")


def trace_ids() -> tuple[str, str]:
    return tracing.current_ids()


__all__ = [
    "Span",
    "attempt_began",
    "attempt_ended",
    "clock",
    "matched",
    "metrics",
    "observing",
    "publish",
    "runner_context",
    "trace_ids",
    "tracing",
]
