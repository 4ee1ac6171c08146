"""Presets: handler types that expand into an ``http`` config and run on the http runner.

``slack`` posts to a Slack incoming webhook; ``sms`` sends a text through a
Twilio-style HTTP API (form POST to ``/2010-04-01/Accounts/{sid}/Messages.json``
with basic auth). Both inherit everything of ``http``: the SSRF guard, timeouts,
retry classification and ``Idempotency-Key``. The generic "run API request"
preset is ``http`` itself (see docs/runners/http.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from neoactions.domain.model import JSON, JSONObject
from neoactions.sandboxes.http.runner import HttpRunner
from neoactions.server.runners import ExecutionContext, RunnerUpdate

_COMMON: JSONObject = {
    "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 900},
}

SLACK_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "slack handler config (an http preset)",
    "type": "object",
    "required": ["webhook_url"],
    "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
    "additionalProperties": False,
    "properties": {
        "webhook_url": {"type": "string", "minLength": 1},
        "text": {"type": "string"},
        "blocks": {"type": "array"},
        "username": {"type": "string"},
        "icon_emoji": {"type": "string"},
        "channel": {"type": "string"},
        **_COMMON,
    },
}

SMS_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sms handler config (a Twilio-style http preset)",
    "type": "object",
    "required": ["account_sid", "auth_token", "from", "to", "body"],
    "additionalProperties": False,
    "properties": {
        "base_url": {"type": "string", "default": "https://api.twilio.com"},
        "account_sid": {"type": "string", "minLength": 1},
        "auth_token": {"type": "string", "minLength": 1},
        "from": {"type": "string", "minLength": 1},
        "to": {"type": "string", "minLength": 1},
        "body": {"type": "string", "minLength": 1},
        "status_callback": {"type": "string"},
        **_COMMON,
    },
}


def slack_to_http(config: JSONObject) -> JSONObject:
    """The http config a ``slack`` config stands for."""
    payload = {k: config[k] for k in ("text", "blocks", "username", "icon_emoji", "channel") if k in config}
    out: JSONObject = {"method": "POST", "url": config["webhook_url"], "body": payload}
    if "timeout_seconds" in config:
        out["timeout_seconds"] = config["timeout_seconds"]
    return out


def sms_to_http(config: JSONObject) -> JSONObject:
    """The http config an ``sms`` config stands for (Twilio's Messages resource)."""
    base = str(config.get("base_url", "https://api.twilio.com")).rstrip("/")
    sid = str(config["account_sid"])
    form = {"From": config["from"], "To": config["to"], "Body": config["body"]}
    if "status_callback" in config:
        form["StatusCallback"] = config["status_callback"]
    out: JSONObject = {
        "method": "POST",
        "url": f"{base}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json",
        "auth": {"type": "basic", "username": sid, "password": config["auth_token"]},
        "body": form,
        "body_format": "form",
        "response_mapping": {"sid": "$.body.sid", "message_status": "$.body.status"},
    }
    if "timeout_seconds" in config:
        out["timeout_seconds"] = config["timeout_seconds"]
    return out


class SlackRunner:
    """``slack``: the http runner on the expanded config."""

    def __init__(self, http: HttpRunner) -> None:
        self._http = http

    def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        return self._http.execute(slack_to_http(config), data, ctx)


class SmsRunner:
    """``sms``: the http runner on the expanded config."""

    def __init__(self, http: HttpRunner) -> None:
        self._http = http

    def execute(self, config: JSONObject, data: JSON, ctx: ExecutionContext) -> AsyncIterator[RunnerUpdate]:
        return self._http.execute(sms_to_http(config), data, ctx)


__all__ = [
    "SLACK_SCHEMA",
    "SMS_SCHEMA",
    "SlackRunner",
    "SmsRunner",
    "slack_to_http",
    "sms_to_http",
]
