"""Flow control for one process (embedded mode): dictionaries and a monotonic clock.

The same algorithms as :mod:`neoactions.server.flow.redis_flow`, written in Python:
concurrency as leases with an expiry, rate limits as sliding-window logs, breakers
counting outcomes in bucketed windows. Every method runs without awaiting, so on
one event loop each call is atomic — no lock is needed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from neoactions.domain.model import RateLimit
from neoactions.server.flow.common import binding_refusal, new_lease_id, rate_windows
from neoactions.server.flow.config import FlowControlConfig
from neoactions.server.flow.port import (
    Admission,
    AdmissionRequest,
    Admitted,
    BreakerState,
    Lease,
    RefusalReason,
)

#: an action's lease table is swept of expired leases when it is this large (else only when full)
_PRUNE_AT = 1024


@dataclass(slots=True)
class _Breaker:
    """One target's breaker. Absent from the table = closed with nothing counted."""

    open: bool = False
    opened_at: float = 0.0
    probe_id: str = ""
    probe_until: float = 0.0
    #: bucket number -> [failures, calls]
    buckets: dict[int, list[int]] = field(default_factory=dict)


class InProcessFlowControl:
    """:class:`~neoactions.server.flow.port.FlowControl` for a single process.

    ``clock`` returns seconds (monotonic by default); tests pass a controllable one.
    """

    def __init__(self, config: FlowControlConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config or FlowControlConfig()
        self._clock = clock
        #: (tenant, action) -> {lease id: expiry}
        self._slots: dict[tuple[str, str], dict[str, float]] = {}
        #: (scope, tenant, action, window) -> admission times, oldest first
        self._logs: dict[tuple[str, str, str, float], deque[float]] = {}
        self._breakers: dict[str, _Breaker] = {}

    @property
    def config(self) -> FlowControlConfig:
        return self._config

    # --- admission ------------------------------------------------------------------
    async def admit(self, request: AdmissionRequest) -> Admission:
        cfg = self._config
        now = self._clock()
        refusals: list[tuple[RefusalReason, float]] = []

        probe = False
        breaker = self._breakers.get(request.target) if request.target else None
        if breaker is not None and breaker.open:
            reopen_at = breaker.opened_at + cfg.breaker.cooldown_seconds
            if now < reopen_at:
                refusals.append((RefusalReason.BREAKER_OPEN, reopen_at - now))
            elif breaker.probe_id and breaker.probe_until > now:
                # A probe is out; its outcome decides. Poll, but not past its lease.
                refusals.append((RefusalReason.BREAKER_OPEN, min(cfg.busy_retry_seconds, breaker.probe_until - now)))
            else:
                probe = True

        slot_key = (request.tenant, request.action_name)
        slots = self._slots.get(slot_key, {})
        if (request.max_concurrency > 0 and len(slots) >= request.max_concurrency) or len(slots) > _PRUNE_AT:
            # only a count that may refuse (or a large one) is worth dropping expired leases for
            slots = self._live_slots(slot_key, now)
        if request.max_concurrency > 0 and len(slots) >= request.max_concurrency:
            # The slot that frees first without help is the (n - max)-th earliest expiry;
            # a release may come sooner, hence the poll cap.
            expiry = sorted(slots.values())[len(slots) - request.max_concurrency]
            refusals.append((RefusalReason.MAX_CONCURRENCY, min(cfg.busy_retry_seconds, expiry - now)))

        logs = [
            *self._rate_logs("action", request.tenant, request.action_name, request.rate_limit, now),
            *self._rate_logs("tenant", request.tenant, "", self._tenant_limit(request), now),
        ]
        for reason, log, limit, window in logs:
            if len(log) >= limit:
                refusals.append((reason, log[len(log) - limit] + window - now))

        refused = binding_refusal(refusals)
        if refused is not None:
            if not slots:
                self._slots.pop(slot_key, None)
            return refused

        ttl = request.lease_seconds or cfg.lease_ttl_seconds
        lease = Lease(
            id=new_lease_id(request.execution_id),
            tenant=request.tenant,
            action_name=request.action_name,
            target=request.target,
            expires_at=now + ttl,
            probe=probe,
        )
        slots[lease.id] = lease.expires_at
        self._slots[slot_key] = slots
        for _, log, _, _ in logs:
            log.append(now)
        if probe and breaker is not None:
            breaker.probe_id, breaker.probe_until = lease.id, lease.expires_at
        return Admitted(lease)

    def _tenant_limit(self, request: AdmissionRequest) -> RateLimit:
        if request.tenant_rate_limit is not None:
            return request.tenant_rate_limit
        return self._config.tenant_limit(request.tenant)

    def _live_slots(self, key: tuple[str, str], now: float) -> dict[str, float]:
        """The unexpired leases of an action (expired ones are a dead worker's: dropped)."""
        slots = self._slots.get(key, {})
        return {lease_id: expiry for lease_id, expiry in slots.items() if expiry > now}

    def _rate_logs(
        self, scope: str, tenant: str, action: str, limit: RateLimit, now: float
    ) -> list[tuple[RefusalReason, deque[float], int, float]]:
        """The sliding-window logs ``limit`` is checked against, with what fell out of the window dropped."""
        reason = RefusalReason.RATE_LIMIT if scope == "action" else RefusalReason.TENANT_RATE_LIMIT
        out: list[tuple[RefusalReason, deque[float], int, float]] = []
        for n, window in rate_windows(limit):
            log = self._logs.setdefault((scope, tenant, action, window), deque())
            while log and log[0] <= now - window:
                log.popleft()
            out.append((reason, log, n, window))
        return out

    # --- leases ---------------------------------------------------------------------
    async def release(self, lease: Lease) -> None:
        key = (lease.tenant, lease.action_name)
        slots = self._slots.get(key)
        if slots is not None:
            slots.pop(lease.id, None)
            if not slots:
                del self._slots[key]
        breaker = self._breakers.get(lease.target)
        if breaker is not None and breaker.probe_id == lease.id:
            # A probe given back without an outcome: let the next admission probe.
            breaker.probe_id, breaker.probe_until = "", 0.0

    async def extend(self, lease: Lease, seconds: float) -> bool:
        now = self._clock()
        slots = self._slots.get((lease.tenant, lease.action_name), {})
        expiry = slots.get(lease.id)
        if expiry is None or expiry <= now:
            slots.pop(lease.id, None)
            return False
        lease.expires_at = slots[lease.id] = now + seconds
        breaker = self._breakers.get(lease.target)
        if breaker is not None and breaker.probe_id == lease.id:
            breaker.probe_until = lease.expires_at
        return True

    async def finish(self, lease: Lease, success: bool) -> None:
        await self.record_outcome(lease.target, success, lease=lease)
        await self.release(lease)

    # --- circuit breaker -----------------------------------------------------------
    async def record_outcome(self, target: str, success: bool, *, lease: Lease | None = None) -> BreakerState:
        if not target:
            return BreakerState.CLOSED
        cfg = self._config.breaker
        now = self._clock()
        breaker = self._breakers.get(target)
        if breaker is not None and breaker.open:
            if now < breaker.opened_at + cfg.cooldown_seconds:
                return BreakerState.OPEN  # cooling down: late outcomes change nothing
            if lease is not None and not lease.probe:
                return BreakerState.HALF_OPEN  # only the probe decides
            if success:
                del self._breakers[target]
                return BreakerState.CLOSED
            breaker.opened_at, breaker.probe_id, breaker.probe_until = now, "", 0.0
            return BreakerState.OPEN

        if success and not cfg.failure_rate_threshold:
            # Only failures are counted when no failure rate is configured.
            return BreakerState.CLOSED
        breaker = self._breakers.setdefault(target, _Breaker())
        bucket = math.floor(now / cfg.bucket_seconds)
        counts = breaker.buckets.setdefault(bucket, [0, 0])
        counts[0] += 0 if success else 1
        counts[1] += 1
        oldest = bucket - cfg.window_buckets + 1
        for old in [b for b in breaker.buckets if b < oldest]:
            del breaker.buckets[old]
        failures = sum(c[0] for c in breaker.buckets.values())
        calls = sum(c[1] for c in breaker.buckets.values())
        if not success and cfg.trips(failures, calls):  # a success never opens a breaker
            self._breakers[target] = _Breaker(open=True, opened_at=now)
            return BreakerState.OPEN
        return BreakerState.CLOSED

    async def breaker_state(self, target: str) -> BreakerState:
        breaker = self._breakers.get(target)
        if breaker is None or not breaker.open:
            return BreakerState.CLOSED
        if self._clock() < breaker.opened_at + self._config.breaker.cooldown_seconds:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    async def aclose(self) -> None:
        self._slots.clear()
        self._logs.clear()
        self._breakers.clear()


__all__ = ["InProcessFlowControl"]
