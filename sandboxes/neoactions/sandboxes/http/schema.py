"""The ``http`` handler config: its JSON Schema and the checks a schema cannot say.

Configs are validated when an action is saved, *before* templates are rendered,
so a string may still hold ``{{ ... }}``; the deeper checks skip such values and
the runner checks them again once rendered.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from neoactions.domain.errors import Violations
from neoactions.domain.model import JSONObject
from neoactions.sandboxes.http.signing import InvalidSecret, check_secret

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_RESPONSE_BYTES = 1024 * 1024

_AUTH_SCHEMA: JSONObject = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type", "token"],
            "properties": {"type": {"const": "bearer"}, "token": {"type": "string"}},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "required": ["type", "username", "password"],
            "properties": {
                "type": {"const": "basic"},
                "username": {"type": "string"},
                "password": {"type": "string"},
            },
            "additionalProperties": False,
        },
        {
            "type": "object",
            "required": ["type", "value"],
            "properties": {
                "type": {"const": "api_key"},
                "header": {"type": "string", "minLength": 1, "default": "X-API-Key"},
                "value": {"type": "string"},
            },
            "additionalProperties": False,
        },
    ]
}

CONFIG_SCHEMA: JSONObject = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "http handler config",
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "http(s) URL"},
        "method": {"enum": METHODS, "default": "POST"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "query": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "auth": _AUTH_SCHEMA,
        "body": {
            "description": "the request body (rendered); default: the input data for POST/PUT/PATCH, none otherwise"
        },
        "body_format": {"enum": ["json", "form", "text"], "default": "json"},
        "fields": {
            "description": "field mapping in: which input fields go into the body, as "
            "{body_key: input.dot.path} or a list of input paths (keyed by their last segment)",
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": "string"}},
                {"type": "array", "items": {"type": "string"}},
            ],
        },
        "response_mapping": {
            "description": "response mapping out: {output_key: path} over {status, headers, body}, e.g. $.body.data.id",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "response_headers": {
            "description": "response headers kept in the output (lower-case names)",
            "type": "array",
            "items": {"type": "string"},
        },
        "webhook": {
            "description": "sign per Standard Webhooks; several secrets during rotation",
            "type": "object",
            "required": ["secrets"],
            "additionalProperties": False,
            "properties": {
                "secrets": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ]
                }
            },
        },
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 900},
        "follow_redirects": {"type": "boolean", "default": False},
        "max_response_bytes": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_RESPONSE_BYTES,
            "default": DEFAULT_RESPONSE_BYTES,
        },
    },
}


#: credentials: they accept only ``{{ secrets.NAME }}`` references (``HandlerType.sensitive_config_paths``)
SENSITIVE_PATHS = frozenset(
    {
        "auth.token",
        "auth.password",
        "auth.value",
        "headers.Authorization",
        "headers.Proxy-Authorization",
        "webhook.secrets",
    }
)


def templated(value: object) -> bool:
    """A string still holding a template: it can only be checked once rendered."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be requested, or ``None``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    return None


def secrets_of(config: JSONObject) -> list[str]:
    """The configured webhook secrets as a list (one string is one secret)."""
    webhook = config.get("webhook")
    if not isinstance(webhook, dict):
        return []
    secrets = webhook.get("secrets", [])
    return [secrets] if isinstance(secrets, str) else [str(s) for s in secrets]


def validate_config(config: JSONObject) -> None:
    """Checks beyond the schema, on the values that hold no template."""
    problems = Violations()
    url = config.get("url", "")
    if not templated(url):
        problem = url_problem(str(url))
        if problem:
            problems.add("url", problem)
    for i, secret in enumerate(secrets_of(config)):
        if templated(secret):
            continue
        try:
            check_secret(secret)
        except InvalidSecret as exc:
            problems.add(f"webhook.secrets[{i}]", str(exc))
    body = config.get("body")
    if "fields" in config and body is not None and not isinstance(body, dict):
        problems.add("fields", "fields can only be merged into an object body")
    form = config.get("body_format") == "form"
    if form and body is not None and not templated(body) and not isinstance(body, dict):
        problems.add("body", "a form body must be an object")
    problems.raise_if_any("invalid http handler config")


__all__ = [
    "CONFIG_SCHEMA",
    "DEFAULT_RESPONSE_BYTES",
    "MAX_RESPONSE_BYTES",
    "METHODS",
    "SENSITIVE_PATHS",
    "secrets_of",
    "templated",
    "url_problem",
    "validate_config",
]
