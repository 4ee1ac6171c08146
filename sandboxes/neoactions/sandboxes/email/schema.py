"""The ``email`` handler config: its JSON Schema and deeper checks."""

from __future__ import annotations

from neoactions.domain.errors import Violations
from neoactions.domain.model import JSONObject
from neoactions.sandboxes.http.schema import templated

_ADDRESSES: JSONObject = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}},
    ]
}

#: headers the runner writes itself; an extra header may not replace them
RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version", "content-type"}
)

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "email handler config",
    "type": "object",
    "required": ["host", "from", "to", "subject"],
    "anyOf": [{"required": ["text"]}, {"required": ["html"]}],
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "port": {
            "type": "integer",
            "minimum": 1,
            "maximum": 65535,
            "description": "default: 465 with tls, 587 with starttls, 25 with none",
        },
        "security": {"enum": ["starttls", "tls", "none"], "default": "starttls"},
        "username": {"type": "string"},
        "password": {"type": "string"},
        "from": {"type": "string", "minLength": 1},
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "reply_to": _ADDRESSES,
        "subject": {"type": "string"},
        "text": {"type": "string"},
        "html": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "ca_cert": {"type": "string", "description": "PEM of a CA to trust for this server"},
        "validate_certs": {"type": "boolean", "default": True},
        "local_hostname": {"type": "string", "description": "the name sent in EHLO"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 900},
    },
}


def validate_config(config: JSONObject) -> None:
    """Checks a schema cannot say."""
    problems = Violations()
    for name in config.get("headers", {}):
        if name.lower() in RESERVED_HEADERS:
            problems.add(f"headers.{name}", f"{name} is set from its own config key")
    if "username" in config and "password" not in config:
        problems.add("password", "a username needs a password")
    for key in ("from", "to", "cc", "bcc", "reply_to"):
        values = config.get(key, [])
        for value in [values] if isinstance(values, str) else values:
            if not templated(value) and "@" not in value:
                problems.add(key, f"{value!r} is not an email address")
    problems.raise_if_any("invalid email handler config")


__all__ = ["CONFIG_SCHEMA", "RESERVED_HEADERS", "validate_config"]
