"""The ``http`` handler type: webhooks and API requests, and its presets.

One pooled httpx client per runner, behind an SSRF guard (see :mod:`.guard`);
webhooks signed per Standard Webhooks (see :mod:`.signing`); responses
classified for retries (see :mod:`.response`). ``slack`` and ``sms`` are presets
that expand into an http config. Operators allow-list networks the guard would
otherwise refuse with the ``http_allow_networks`` setting (a list of CIDRs).
"""

from __future__ import annotations

from neoactions.sandboxes.http.guard import AddressPolicy, AddressRefused, guarded_client
from neoactions.sandboxes.http.presets import (
    SLACK_SCHEMA,
    SMS_SCHEMA,
    SlackRunner,
    SmsRunner,
    slack_to_http,
    sms_to_http,
)
from neoactions.sandboxes.http.response import classify_status, parse_retry_after
from neoactions.sandboxes.http.runner import HttpRunner
from neoactions.sandboxes.http.schema import CONFIG_SCHEMA, SENSITIVE_PATHS, validate_config
from neoactions.sandboxes.http.signing import WebhookSigner
from neoactions.server.runners import HandlerRegistry, HandlerType


def register(registry: HandlerRegistry) -> None:
    """Add ``http`` and its presets ``slack`` and ``sms`` (one shared runner and pool)."""
    runner = HttpRunner.from_settings(registry.settings)
    registry.register(
        HandlerType(
            name="http",
            runner=runner,
            config_schema=CONFIG_SCHEMA,
            description="HTTP request or Standard Webhooks delivery",
            validate=validate_config,
            close=runner.aclose,
            sensitive_config_paths=SENSITIVE_PATHS,
        )
    )
    registry.register(
        HandlerType(
            name="slack",
            runner=SlackRunner(runner),
            config_schema=SLACK_SCHEMA,
            description="Slack incoming webhook (an http preset)",
        )
    )
    registry.register(
        HandlerType(
            name="sms",
            runner=SmsRunner(runner),
            config_schema=SMS_SCHEMA,
            sensitive_config_paths=frozenset({"auth_token"}),
            description="SMS through a Twilio-style HTTP API (an http preset)",
        )
    )


__all__ = [
    "CONFIG_SCHEMA",
    "SLACK_SCHEMA",
    "SMS_SCHEMA",
    "AddressPolicy",
    "AddressRefused",
    "HttpRunner",
    "SlackRunner",
    "SmsRunner",
    "WebhookSigner",
    "classify_status",
    "guarded_client",
    "parse_retry_after",
    "register",
    "slack_to_http",
    "sms_to_http",
    "validate_config",
]
