"""InProcessFlowControl and the flow package's pure parts: config, breaker targets, the factory.

The behaviour shared with RedisFlowControl is in tests/integration/test_flow_contract.py
(run against both); this covers what is particular to embedded mode.
"""

from __future__ import annotations

import asyncio

import pytest

from neoactions.domain.model import RateLimit
from neoactions.server.flow import (
    AdmissionRequest,
    Admitted,
    BreakerConfig,
    BreakerState,
    FlowControlConfig,
    InProcessFlowControl,
    RefusalReason,
    Refused,
    breaker_target,
    create_flow_control,
)


def request(n: int, **kw: object) -> AdmissionRequest:
    fields: dict[str, object] = {"tenant": "acme", "action_name": "notify", "execution_id": f"ex-{n}"}
    fields.update(kw)
    return AdmissionRequest(**fields)  # type: ignore[arg-type]


# --- configuration -----------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    cfg = FlowControlConfig()
    assert (cfg.lease_ttl_seconds, cfg.busy_retry_seconds, cfg.key_prefix) == (300.0, 1.0, "neoactions:flow")
    assert cfg.tenant_limit("anyone") == RateLimit()
    b = cfg.breaker
    assert (b.failure_threshold, b.failure_rate_threshold, b.minimum_calls) == (5, 0.0, 10)
    assert (b.window_seconds, b.window_buckets, b.cooldown_seconds, b.bucket_seconds) == (60.0, 10, 30.0, 6.0)


def test_config_from_a_settings_mapping() -> None:
    cfg = FlowControlConfig.from_mapping(
        {
            "lease_ttl_seconds": "120",
            "tenant_rate_limit": {"per_minute": 100},
            "tenant_rate_limits": {"big": {"per_minute": 1000, "per_hour": 20000}},
            "breaker": {"failure_threshold": 0, "failure_rate_threshold": 0.5, "cooldown_seconds": 10},
            "key_prefix": "prod:flow",
        }
    )
    assert cfg.lease_ttl_seconds == 120.0
    assert cfg.tenant_limit("small") == RateLimit(per_minute=100)
    assert cfg.tenant_limit("big") == RateLimit(per_minute=1000, per_hour=20000)
    assert cfg.breaker == BreakerConfig(failure_threshold=0, failure_rate_threshold=0.5, cooldown_seconds=10)
    assert cfg.key_prefix == "prod:flow"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lease_ttl": 5}, "unknown flow control settings: lease_ttl"),
        ({"breaker": {"cooldown": 5}}, "unknown breaker settings: cooldown"),
        ({"tenant_rate_limit": {"per_second": 5}}, "unknown tenant_rate_limit settings: per_second"),
        ({"lease_ttl_seconds": 0}, "lease_ttl_seconds must be > 0"),
        ({"breaker": {"failure_rate_threshold": 1.5}}, "failure_rate_threshold must be within 0..1"),
        ({"breaker": {"window_buckets": 0}}, "window_buckets must be >= 1"),
        ({"tenant_rate_limits": {"x": {"per_minute": -1}}}, "rate limits must be >= 0"),
        ({"key_prefix": ""}, "key_prefix must not be empty"),
    ],
)
def test_bad_config_is_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlowControlConfig.from_mapping(values)


def test_factory_without_redis_is_in_process() -> None:
    flow = create_flow_control("", {"breaker": {"cooldown_seconds": 5}})
    assert isinstance(flow, InProcessFlowControl)
    assert flow.config.breaker.cooldown_seconds == 5


# --- breaker targets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler_type", "config", "target"),
    [
        ("http", {"url": "https://user:pw@API.Example.com/v1/orders?id=7"}, "http:api.example.com"),
        ("http", {"url": "http://10.0.0.5:8080/hook"}, "http:10.0.0.5:8080"),
        ("http", {"url": "http://[::1]:9000/x"}, "http:[::1]:9000"),
        ("slack", {"webhook_url": "https://hooks.slack.com/services/T/B/X"}, "http:hooks.slack.com"),
        ("sms", {"to": "+1"}, "http:api.twilio.com"),
        ("python", {"function": "shop.handlers:alert"}, "python:shop.handlers:alert"),
        ("lambda", {"function_name": "resize", "qualifier": "live"}, "lambda:resize:live"),
        ("email", {"host": "SMTP.example.com", "port": 587}, "smtp:smtp.example.com:587"),
        ("email", {"host": "smtp.example.com"}, "smtp:smtp.example.com"),
        ("container", {"image": "shop/resize:1.2"}, "container:shop/resize:1.2"),
        ("sidecar", {"address": "127.0.0.1:50070"}, "sidecar:127.0.0.1:50070"),
        ("my-plugin", {"anything": 1}, "my-plugin"),
        ("http", {"url": "not a url"}, "http"),
        ("http", {}, "http"),
    ],
)
def test_breaker_target(handler_type: str, config: dict[str, object], target: str) -> None:
    assert breaker_target(handler_type, config) == target


# --- in-process specifics -------------------------------------------------------------


async def test_default_monotonic_clock_expires_leases() -> None:
    flow = InProcessFlowControl(FlowControlConfig(busy_retry_seconds=5.0))
    first = await flow.admit(request(1, max_concurrency=1, lease_seconds=0.05))
    assert isinstance(first, Admitted)
    refusal = await flow.admit(request(2, max_concurrency=1))
    assert isinstance(refusal, Refused) and 0 < refusal.retry_after_seconds <= 0.05
    async with asyncio.timeout(5):
        while True:
            adm = await flow.admit(request(2, max_concurrency=1))
            if isinstance(adm, Admitted):
                break
            await asyncio.sleep(adm.retry_after_seconds)


async def test_no_target_means_no_breaker() -> None:
    flow = InProcessFlowControl(FlowControlConfig(breaker=BreakerConfig(failure_threshold=1)))
    assert await flow.record_outcome("", False) is BreakerState.CLOSED
    assert isinstance(await flow.admit(request(1)), Admitted)


async def test_a_breaker_with_both_thresholds_off_never_opens() -> None:
    flow = InProcessFlowControl(FlowControlConfig(breaker=BreakerConfig(failure_threshold=0)))
    for _ in range(100):
        assert await flow.record_outcome("http:x", False) is BreakerState.CLOSED
    assert isinstance(await flow.admit(request(1, target="http:x")), Admitted)


async def test_refusal_reports_the_reason() -> None:
    flow = InProcessFlowControl()
    await flow.admit(request(1, rate_limit=RateLimit(per_minute=1)))
    refusal = await flow.admit(request(2, rate_limit=RateLimit(per_minute=1)))
    assert isinstance(refusal, Refused)
    assert not refusal.admitted
    assert refusal.reason is RefusalReason.RATE_LIMIT
    assert 59 < refusal.retry_after_seconds <= 60
