"""Turning a rendered ``http`` config and the input into the request to send.

The body is serialised to bytes exactly once: the webhook signature is computed
over those bytes and they are what goes on the wire, so a receiver verifying
the signature sees the same payload byte for byte.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from neoactions.domain.model import JSON, JSONObject
from neoactions.sandboxes.http.response import lookup
from neoactions.sandboxes.http.schema import secrets_of, url_problem
from neoactions.sandboxes.http.signing import InvalidSecret, WebhookSigner
from neoactions.server.runners import ExecutionContext

#: methods whose default body is the input data
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestConfigError(ValueError):
    """The rendered config cannot make a request (a retry would not help)."""


@dataclass(slots=True)
class PreparedRequest:
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None


def _fields(data: JSON, fields: Mapping[str, str] | list[str]) -> JSONObject:
    """Field mapping in: ``{body_key: input_path}`` or a list of paths."""
    if isinstance(fields, list):
        pairs = [(path.rsplit(".", 1)[-1].lstrip("$"), path) for path in fields]
    else:
        pairs = list(fields.items())
    try:
        return {key: lookup(data, path) for key, path in pairs}
    except ValueError as exc:
        raise RequestConfigError(f"fields: {exc}") from None


def body_value(config: JSONObject, data: JSON, method: str) -> JSON:
    """What to send: ``body``, merged with ``fields``; the input for POST/PUT/PATCH by default."""
    has_body = "body" in config
    body = config.get("body")
    if "fields" in config:
        picked = _fields(data, config["fields"])
        if not has_body or body is None:
            return picked
        if not isinstance(body, dict):
            raise RequestConfigError("fields can only be merged into an object body")
        return {**body, **picked}
    if has_body:
        return body
    return data if method in _BODY_METHODS else None


def encode_body(value: JSON, body_format: str) -> tuple[bytes, str]:
    """The body's bytes and default content type."""
    if body_format == "form":
        if not isinstance(value, dict):
            raise RequestConfigError("a form body must be an object")
        pairs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    if body_format == "text":
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text.encode(), "text/plain; charset=utf-8"
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RequestConfigError(f"the body is not JSON: {exc}") from None
    return encoded.encode(), "application/json"


def _auth_headers(auth: JSONObject | None) -> dict[str, str]:
    if not auth:
        return {}
    kind = auth.get("type")
    if kind == "bearer":
        return {"authorization": f"Bearer {auth['token']}"}
    if kind == "basic":
        pair = f"{auth['username']}:{auth['password']}".encode()
        return {"authorization": f"Basic {base64.b64encode(pair).decode()}"}
    if kind == "api_key":
        return {str(auth.get("header", "X-API-Key")).lower(): str(auth["value"])}
    raise RequestConfigError(f"unknown auth type {kind!r}")


def build_request(config: JSONObject, data: JSON, ctx: ExecutionContext, signer: WebhookSigner) -> PreparedRequest:
    """The request for one attempt, headers signed when ``webhook`` is configured."""
    method = str(config.get("method", "POST")).upper()
    url = str(config["url"])
    problem = url_problem(url)
    if problem:
        raise RequestConfigError(f"url: {problem}")
    headers = {str(k).lower(): str(v) for k, v in config.get("headers", {}).items()}
    headers.update(_auth_headers(config.get("auth")))
    # the stable key lets the target make the effect exactly-once across retries
    if ctx.idempotency_key:
        headers.setdefault("idempotency-key", ctx.idempotency_key)
    for name in ("traceparent", "tracestate"):
        if ctx.trace_context.get(name):
            headers[name] = ctx.trace_context[name]

    value = body_value(config, data, method)
    content: bytes | None = None
    if value is not None:
        content, content_type = encode_body(value, str(config.get("body_format", "json")))
        headers.setdefault("content-type", content_type)

    secrets = secrets_of(config)
    if secrets:
        msg_id = ctx.idempotency_key or ctx.execution_id
        # every encoder above produced UTF-8 from text, so this round-trips exactly
        payload = (content or b"").decode("utf-8")
        try:
            headers.update(signer.headers(msg_id, payload, secrets))
        except InvalidSecret as exc:
            raise RequestConfigError(f"webhook.secrets: {exc}") from None

    params = {str(k): _query_value(v) for k, v in config.get("query", {}).items()}
    return PreparedRequest(method, url, params, headers, content)


def _query_value(value: JSON) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["PreparedRequest", "RequestConfigError", "body_value", "build_request", "encode_body"]
