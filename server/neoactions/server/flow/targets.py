"""Breaker targets: which attempts share one circuit breaker.

A target names the thing that fails together: an HTTP host (every action calling
``api.example.com`` trips the same breaker), an SMTP server, a Lambda function, a
Python function, a sidecar address. Computed from the *rendered* config, so a
templated URL is keyed by the host it actually calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from neoactions.domain.model import JSONObject


def _host(url: Any) -> str:
    """``host[:port]`` of a URL, lower-cased, without credentials; ``""`` if it has none."""
    if not isinstance(url, str) or not url:
        return ""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    if ":" in host:  # IPv6 literal: keep it readable and unambiguous
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# handler type -> (target kind, the part of the config naming what is called)
_RULES: dict[str, tuple[str, Callable[[JSONObject], str]]] = {
    "http": ("http", lambda c: _host(c.get("url"))),
    "slack": ("http", lambda c: _host(c.get("webhook_url"))),
    "sms": ("http", lambda c: _host(c.get("base_url") or "https://api.twilio.com")),
    "python": ("python", lambda c: _str(c.get("function"))),
    "lambda": ("lambda", lambda c: ":".join(filter(None, (_str(c.get("function_name")), _str(c.get("qualifier")))))),
    "email": (
        "smtp",
        lambda c: f"{_str(c.get('host')).lower()}:{c['port']}" if c.get("port") else _str(c.get("host")).lower(),
    ),
    "container": ("container", lambda c: _str(c.get("image"))),
    "sidecar": ("sidecar", lambda c: _str(c.get("address"))),
    "wasm": ("wasm", lambda c: _str(c.get("module"))),
}


def breaker_target(handler_type: str, rendered_config: JSONObject) -> str:
    """The breaker key of an attempt, e.g. ``http:api.example.com``, ``python:shop.handlers:alert``.

    Handler types without a rule (plugins) — or configs missing the identifying
    field — share one breaker per handler type: coarser, but never one breaker per
    event, which would never trip.
    """
    rule = _RULES.get(handler_type)
    if rule is None:
        return handler_type
    kind, name_of = rule
    name = name_of(rendered_config)
    return f"{kind}:{name}" if name else handler_type


__all__ = ["breaker_target"]
