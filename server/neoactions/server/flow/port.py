"""The flow-control port: what the dispatcher asks before and after every attempt.

Before an attempt the dispatcher calls :meth:`FlowControl.admit`. An
:class:`Admitted` answer holds a :class:`Lease` (a concurrency slot, and maybe the
breaker's half-open probe) that must be handed back with :meth:`FlowControl.release`
when the attempt ends. A :class:`Refused` answer means *delay this execution, do not
spend an attempt*: it says why and, as precisely as the limit allows, after how many
seconds admission can succeed, so delayed executions do not spin.

After the attempt, :meth:`FlowControl.record_outcome` feeds the circuit breaker of
the attempt's target (see :func:`neoactions.server.flow.targets.breaker_target`);
:meth:`FlowControl.finish` does that and the release in one call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

from neoactions.domain.model import Priority, RateLimit


class RefusalReason(enum.StrEnum):
    """Which limit refused an admission."""

    MAX_CONCURRENCY = "max_concurrency"
    RATE_LIMIT = "rate_limit"
    TENANT_RATE_LIMIT = "tenant_rate_limit"
    BREAKER_OPEN = "breaker_open"


class BreakerState(enum.StrEnum):
    """A target's circuit breaker, as seen now."""

    CLOSED = "closed"
    #: failing: nothing is admitted until the cool-down ends
    OPEN = "open"
    #: cool-down over: one probe at a time is admitted; its outcome closes or re-opens
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """Everything the limits of one attempt depend on."""

    tenant: str
    #: ``""`` for an inline execution (no stored action): only tenant limits and the breaker apply
    action_name: str
    execution_id: str
    #: the action's ``max_concurrency`` across every worker; 0 = unlimited
    max_concurrency: int = 0
    #: the action's own limit; 0 fields = unlimited
    rate_limit: RateLimit = field(default_factory=RateLimit)
    #: the tenant's limit; ``None`` = the configured one (``FlowControlConfig.tenant_limit``)
    tenant_rate_limit: RateLimit | None = None
    #: carried for the caller's logs and metrics; admission itself never reorders work
    priority: Priority = Priority.NORMAL
    #: the circuit breaker's key, from ``breaker_target()``; ``""`` = no breaker
    target: str = ""
    #: how long the lease lives unless extended or released; 0 = ``FlowControlConfig.lease_ttl_seconds``.
    #: Pass the attempt's timeout plus a margin so a normal attempt never needs ``extend``.
    lease_seconds: float = 0.0


@dataclass(slots=True)
class Lease:
    """An admitted attempt's hold on its limits; give it back with ``release``.

    If the worker holding it dies, the lease expires at ``expires_at`` and its
    concurrency slot (and half-open probe, if it is one) returns by itself.
    """

    id: str
    tenant: str
    action_name: str
    target: str
    #: in the implementation's clock (seconds); ``extend`` moves it
    expires_at: float
    #: this attempt is the breaker's half-open probe: report its outcome with this lease
    probe: bool = False
    #: ``False`` when admitting took nothing from the shared state (no limit applied and the
    #: target's breaker was known closed): there is nothing to release or extend
    taken: bool = True


@dataclass(frozen=True, slots=True)
class Admitted:
    """Run the attempt now; release the lease afterwards."""

    lease: Lease

    @property
    def admitted(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Refused:
    """Do not run now: re-schedule the execution after ``retry_after_seconds`` without spending an attempt."""

    reason: RefusalReason
    #: when the binding limit frees up; exact for rate limits and an open breaker, a
    #: bounded poll interval when the wait is for another attempt to finish
    retry_after_seconds: float

    @property
    def admitted(self) -> bool:
        return False


Admission: TypeAlias = Admitted | Refused


class FlowControl(Protocol):
    """Concurrency, rate limits and circuit breakers, checked and taken atomically."""

    async def admit(self, request: AdmissionRequest) -> Admission:
        """Take every limit of ``request`` at once, or none of them.

        Raises ``Unavailable`` when the shared state cannot be reached (treat it
        like a refusal: delay, spend no attempt).
        """
        ...

    async def release(self, lease: Lease) -> None:
        """Give the concurrency slot (and a half-open probe) back; harmless to repeat."""
        ...

    async def extend(self, lease: Lease, seconds: float) -> bool:
        """Make ``lease`` expire ``seconds`` from now; ``False`` if it had already expired (the slot is lost)."""
        ...

    async def record_outcome(self, target: str, success: bool, *, lease: Lease | None = None) -> BreakerState:
        """Feed ``target``'s breaker with one attempt's outcome; returns the breaker's state after it.

        Pass the attempt's lease: while the breaker is half-open only the probe's
        outcome (``lease.probe``, or an outcome reported without a lease) closes
        or re-opens it, so a straggler admitted before the breaker opened cannot.
        """
        ...

    async def finish(self, lease: Lease, success: bool) -> None:
        """The attempt holding ``lease`` ended: ``record_outcome`` for its target (with the
        lease), then ``release`` it — in one call, the one an attempt normally makes."""
        ...

    async def breaker_state(self, target: str) -> BreakerState:
        """The state of ``target``'s breaker now (for status pages, logs and tests)."""
        ...

    async def aclose(self) -> None:
        """Release connections; leases still held expire by themselves."""
        ...


__all__ = [
    "Admission",
    "AdmissionRequest",
    "Admitted",
    "BreakerState",
    "FlowControl",
    "Lease",
    "RefusalReason",
    "Refused",
]
