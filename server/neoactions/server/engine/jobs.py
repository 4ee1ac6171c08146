"""The work items of the engine: a :class:`Job` (a leased execution on its way to a runner)
and what the attempt runner plans for it before it runs (:class:`Plan`, :class:`Begun`,
:class:`Prepared`), or :class:`Deferred` when flow control said not now.

Plain data, imported by the dispatcher, the attempt runner, the lease keeper and the
feeders alike; it imports none of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from neoactions.domain.model import Attempt, Execution, HandlerSpec, JSONObject, RetryPolicy
from neoactions.server.flow import Lease
from neoactions.server.queue import Delivery
from neoactions.server.runners import Failure, HandlerType
from neoactions.server.secrets.masking import NO_MASK, Masker


@dataclass(frozen=True, slots=True)
class Deferred:
    """Flow control refused the attempt: try again after ``seconds``; no attempt was spent."""

    seconds: float
    reason: str


@dataclass(slots=True)
class Prepared:
    """What an attempt's runner is called with: the handler type and the rendered config."""

    handler_type: HandlerType
    config: JSONObject
    envelope: JSONObject | None
    #: masks the values of the secrets the config used in whatever the attempt hands back
    masker: Masker = NO_MASK


@dataclass(slots=True)
class Plan:
    """What the action (or the inline handler) says an attempt is: handler, timeout, retries."""

    handler: HandlerSpec
    timeout_seconds: float
    retry: RetryPolicy


@dataclass(slots=True)
class Begun:
    """An attempt planned and admitted, not yet running."""

    plan: Plan
    #: what the runner is called with, or the failure that ends the attempt at once
    prepared: Prepared | Failure
    #: flow control's lease, given back when the attempt ends (or is abandoned)
    flow_lease: Lease | None
    attempt: Attempt
    #: its start is stored already (the publisher stored it with the execution)
    stored: bool = False


@dataclass(slots=True, eq=False)
class Job:
    """A leased execution on its way to a runner, with what the pipeline already has in memory."""

    execution: Execution
    #: the event envelope templates see; loaded from the store when missing
    envelope: JSONObject | None = None
    done: asyncio.Future[Execution] | None = field(default=None, repr=False)
    #: the queue entry that brought it; acknowledged once the attempt's outcome is stored
    delivery: Delivery | None = None
    #: a caller waits in this process: keep the lease through retries and run them here
    keep_lease: bool = False
    #: its outcome is being recorded (a write that gives up the lease): not a lost lease
    settling: bool = False
    #: its next attempt, planned and admitted before the job was queued (see ``Dispatcher.begin``)
    begun: Begun | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Cancel the running attempt (its lease was lost or it was cancelled)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()


__all__ = ["Begun", "Deferred", "Job", "Plan", "Prepared"]
