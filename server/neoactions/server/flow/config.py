"""Flow-control settings, with the defaults documented in ``docs/flow-control.md``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from neoactions.domain.model import RateLimit


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a target's circuit breaker opens and how long it stays open.

    The breaker counts outcomes in a sliding window made of ``window_buckets``
    buckets; it opens when *either* threshold is reached (set one to 0 to turn it
    off; both 0 = the breaker never opens).
    """

    #: failures within the window that open the breaker (0 = off)
    failure_threshold: int = 5
    #: failed fraction of the calls within the window that opens it, 0..1 (0 = off)
    failure_rate_threshold: float = 0.0
    #: calls within the window before ``failure_rate_threshold`` is considered
    minimum_calls: int = 10
    window_seconds: float = 60.0
    #: the window slides by ``window_seconds / window_buckets`` (its tolerance)
    window_buckets: int = 10
    #: how long an opened breaker refuses everything before admitting a probe
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 0:
            raise ValueError("breaker.failure_threshold must be >= 0")
        if not 0.0 <= self.failure_rate_threshold <= 1.0:
            raise ValueError("breaker.failure_rate_threshold must be within 0..1")
        if self.minimum_calls < 1:
            raise ValueError("breaker.minimum_calls must be >= 1")
        if self.window_seconds <= 0 or self.cooldown_seconds <= 0:
            raise ValueError("breaker.window_seconds and breaker.cooldown_seconds must be > 0")
        if self.window_buckets < 1:
            raise ValueError("breaker.window_buckets must be >= 1")

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / self.window_buckets

    def trips(self, failures: int, calls: int) -> bool:
        """Whether ``failures`` out of ``calls`` within the window open the breaker."""
        if self.failure_threshold and failures >= self.failure_threshold:
            return True
        return bool(
            self.failure_rate_threshold
            and calls >= self.minimum_calls
            and failures >= self.failure_rate_threshold * calls
        )


@dataclass(frozen=True, slots=True)
class FlowControlConfig:
    """Settings of both flow-control implementations."""

    #: a lease not released or extended within this returns its slot (a dead worker's)
    lease_ttl_seconds: float = 300.0
    #: the retry hint when the wait is for another attempt to finish (a concurrency
    #: slot, an outstanding half-open probe): no exact time exists, so poll at most this
    #: often — never later than the holding lease's expiry
    busy_retry_seconds: float = 1.0
    #: every tenant's limit unless overridden below; 0 fields = unlimited
    tenant_rate_limit: RateLimit = field(default_factory=RateLimit)
    #: per-tenant overrides, by tenant slug
    tenant_rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    #: every Redis key starts with it; on Redis Cluster put a hash tag in it (``{neoactions}:flow``)
    key_prefix: str = "neoactions:flow"

    def __post_init__(self) -> None:
        if self.lease_ttl_seconds <= 0:
            raise ValueError("lease_ttl_seconds must be > 0")
        if self.busy_retry_seconds <= 0:
            raise ValueError("busy_retry_seconds must be > 0")
        if not self.key_prefix:
            raise ValueError("key_prefix must not be empty")
        for limit in (self.tenant_rate_limit, *self.tenant_rate_limits.values()):
            if limit.per_minute < 0 or limit.per_hour < 0:
                raise ValueError("rate limits must be >= 0")

    def tenant_limit(self, tenant: str) -> RateLimit:
        """The rate limit that applies to all of ``tenant``'s executions together."""
        return self.tenant_rate_limits.get(tenant, self.tenant_rate_limit)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FlowControlConfig:
        """Build from plain settings (YAML/JSON), e.g. ``{"breaker": {"cooldown_seconds": 10}}``.

        Unknown keys raise ``ValueError`` so a typo is not silently ignored.
        """
        _check_keys("flow control", values, {f.name for f in fields(cls)})
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "tenant_rate_limit":
                out[name] = _rate_limit("tenant_rate_limit", value)
            elif name == "tenant_rate_limits":
                out[name] = {str(t): _rate_limit(f"tenant_rate_limits.{t}", v) for t, v in dict(value).items()}
            elif name == "breaker":
                _check_keys("breaker", value, {f.name for f in fields(BreakerConfig)})
                out[name] = BreakerConfig(**value)
            elif name == "key_prefix":
                out[name] = str(value)
            else:
                out[name] = float(value)
        return cls(**out)


def _check_keys(what: str, values: Mapping[str, Any], known: set[str]) -> None:
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(sorted(unknown))}")


def _rate_limit(path: str, value: Any) -> RateLimit:
    if isinstance(value, RateLimit):
        return value
    _check_keys(path, value, {"per_minute", "per_hour"})
    return RateLimit(per_minute=int(value.get("per_minute", 0)), per_hour=int(value.get("per_hour", 0)))


__all__ = ["BreakerConfig", "FlowControlConfig"]
